// Package format writes and reads the packed dataset file: one file holding a
// whole image dataset in independently compressed chunks, with a dense
// fixed-stride index that is memory-mapped rather than parsed.
//
// The byte layout is specified in docs/FORMAT.md; in short:
//
//	header (64 bytes) | chunk 0 | chunk 1 | ... | schema | chunk table | order | index | names | footer (128 bytes)
//
// Every byte of the file is covered by a CRC-32C: the header and the footer
// carry their own, each chunk has one in the chunk table, and the footer
// holds one for every metadata section. The footer is written last and is
// the commit record; the writer works on a temporary file that is renamed
// into place only after the footer is on disk, so a crash never leaves a
// file that looks valid.
//
// Samples are addressed by their dataset index: the position the sample had
// in its source (sources in the order given, CIFAR batches in numbered order,
// image folders sorted by class, then path). Storage order may differ when the
// writer shuffles so that every chunk mixes classes; Reader.ChunkSamples lists
// which dataset indices a chunk stores, for readers that want to read chunk by
// chunk.
package format
