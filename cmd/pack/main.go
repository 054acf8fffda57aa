// Command pack converts image datasets into packed files and inspects them.
//
//	pack SRC... -o OUT          pack CIFAR-10/100 binaries, IDX files or image folders
//	pack info FILE [--json]     summarise a packed file
//	pack verify FILE            check every checksum
//	pack get FILE INDEX [-o x.png]  write one sample as PNG and print its label
package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tsimcne/tsimcne-go/format"
	"github.com/tsimcne/tsimcne-go/internal/cli"
	"github.com/tsimcne/tsimcne-go/pack"
	"github.com/tsimcne/tsimcne-go/source"
)

func main() { cli.Main("pack", newRoot()) }

type packFlags struct {
	out, from, codec, chunkSize, resize string
	imageColumn, labelColumn, appendTo  string
	commitEvery                         int
	resume                              bool
	workers, channels                   int
	shuffle, keepEncoded, skipBad       bool
	fashion, quiet, goJPEG              bool
	seed                                uint64
}

func newRoot() *cobra.Command {
	var f packFlags
	root := &cobra.Command{
		Use:   "pack SRC... -o OUT | pack --append OUT SRC...",
		Short: "Pack an image dataset into one fast, checksummed file",
		Long: `pack converts an image dataset into a packed file that train and embed read.

Sources (detected, or forced with --from):
  cifar10   a directory with data_batch_1..5.bin and test_batch.bin, those files, or cifar-10-binary.tar.gz
  cifar100  a directory with train.bin and test.bin, those files, or cifar-100-binary.tar.gz
  idx       IDX image + label files (MNIST, Fashion-MNIST), gzip or plain, or directories of them
  webdataset  WebDataset .tar shards (key.jpg|png|webp + key.cls), or directories of them
  parquet   .parquet files (Hugging Face layout: image {bytes, path} + ClassLabel label), or directories of them
  arrow     Arrow IPC files (.arrow) with the same columns
  folder    root/<class>/**/<image>: JPEG, PNG, GIF, BMP, WebP

Samples keep their dataset order: sources in the order given, CIFAR batches in
numbered order, folders sorted by class, then path; shards, Parquet and Arrow
files in the order given (directories: by name), rows and members in file order.`,
		Example: `  pack ~/data/cifar-10-batches-bin -o cifar10.tscn
  pack ~/photos --resize 64x64 --codec zstd -o photos.tscn
  pack --append photos.tscn ~/more-photos --resize 64x64
  pack hf-dataset/train-*.parquet --resize 64x64 --commit-every 100000 -o train.tscn
  pack hf-dataset/train-*.parquet --resize 64x64 --commit-every 100000 -o train.tscn --resume   # after an interruption
  pack info cifar10.tscn --json`,
		Args:          cobra.MinimumNArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPack(cmd, args, &f)
		},
	}
	fl := root.Flags()
	fl.StringVarP(&f.out, "output", "o", "", "packed file to write (required unless --append)")
	fl.StringVar(&f.appendTo, "append", "", "add the samples to this existing packed file (old samples keep their indices; classes merge by name)")
	fl.BoolVar(&f.resume, "resume", false, "continue an interrupted pack of the same sources into -o (or --append): samples the file holds, by name, are skipped")
	fl.IntVar(&f.commitEvery, "commit-every", 0, "commit the file after every N samples, so that an interrupted pack keeps them and --append continues it (not with --shuffle)")
	fl.StringVar(&f.from, "from", "", "source kind: cifar10, cifar100, idx, webdataset, parquet, arrow or folder (default: detect)")
	fl.StringVar(&f.codec, "codec", "", "chunk compression: none, lz4 or zstd (default: lz4 for pixels, none with --keep-encoded)")
	fl.StringVar(&f.chunkSize, "chunk-size", fmt.Sprintf("%dKiB", format.DefaultChunkSize>>10), "target uncompressed chunk size, e.g. 64KiB, 1MiB")
	fl.IntVar(&f.workers, "workers", 0, "parallel loading and compression workers (default: number of CPUs)")
	fl.BoolVar(&f.shuffle, "shuffle", false, "store samples in a random order so that every chunk mixes classes (indices keep dataset order)")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of --shuffle")
	fl.StringVar(&f.resize, "resize", "", "folders: store raw pixels resized to WxH, e.g. 64x64")
	fl.BoolVar(&f.keepEncoded, "keep-encoded", false, "folders: store the original image files instead of pixels")
	fl.IntVar(&f.channels, "channels", 0, "folders: 3 = RGB (default; grayscale replicated, alpha dropped), 1 = luminance")
	fl.BoolVar(&f.skipBad, "skip-bad", false, "skip images that cannot be read and list them at the end, instead of failing")
	fl.BoolVar(&f.fashion, "fashion", false, "idx: name the classes as Fashion-MNIST's")
	fl.StringVar(&f.imageColumn, "image-column", "", "parquet, arrow: the column holding the images (binary, or Hugging Face's {bytes, path} struct; default: image, img, or the only such column)")
	fl.StringVar(&f.labelColumn, "label-column", "", "parquet, arrow: the column holding the labels (integers or class names; default: the ClassLabel column, label, labels, class)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress output")
	fl.BoolVar(&f.goJPEG, "go-jpeg", false, "decode JPEGs with Go's image/jpeg even when libjpeg-turbo (libturbojpeg.so.0) is available")
	root.AddCommand(newInfo(), newVerify(), newGet())
	return root
}

// parseSize reads "131072", "128KiB", "128k", "1MiB", "1M".
func parseSize(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1
	for _, u := range []struct {
		suf string
		m   int
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"kb", 1000}, {"mb", 1e6}, {"k", 1 << 10}, {"m", 1 << 20}, {"b", 1}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suf)), u.m
			break
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 || n > (1<<32-1)/mult {
		return 0, fmt.Errorf("size %q: want a positive number of bytes, e.g. 131072, 128KiB or 1MiB", s)
	}
	return n * mult, nil
}

func parseWxH(s string) (w, h int, err error) {
	a, b, ok := strings.Cut(strings.ToLower(s), "x")
	if ok {
		w, err = strconv.Atoi(a)
		if err == nil {
			h, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || w <= 0 || h <= 0 || w > 65535 || h > 65535 {
		return 0, 0, fmt.Errorf("--resize %q: want WIDTHxHEIGHT, e.g. 64x64", s)
	}
	return w, h, nil
}

func runPack(cmd *cobra.Command, args []string, f *packFlags) error {
	ctx := cmd.Context()
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	switch {
	case f.appendTo != "" && f.out != "" && f.out != f.appendTo:
		return fmt.Errorf("--append %s and -o %s: an append writes the file it extends; give one of them", f.appendTo, f.out)
	case f.appendTo != "":
		f.out = f.appendTo
	case f.out == "":
		return fmt.Errorf("required flag \"output\" (-o) not set: name the packed file to write, or --append to an existing one")
	}
	if f.commitEvery < 0 {
		return fmt.Errorf("--commit-every %d: want a positive number of samples", f.commitEvery)
	}
	if f.workers < 0 {
		return fmt.Errorf("--workers %d: want a positive number (or 0 for one per CPU)", f.workers)
	}
	chunk, err := parseSize(f.chunkSize)
	if err != nil {
		return fmt.Errorf("--chunk-size: %w", err)
	}
	opt := source.Options{Kind: f.from, KeepEncoded: f.keepEncoded, Channels: f.channels, Fashion: f.fashion,
		GoJPEG: f.goJPEG, ImageColumn: f.imageColumn, LabelColumn: f.labelColumn}
	if f.resize != "" {
		if opt.ResizeW, opt.ResizeH, err = parseWxH(f.resize); err != nil {
			return err
		}
	}
	if _, err := format.ParseCodec(f.codec); err != nil {
		return fmt.Errorf("--codec: %w", err)
	}
	if st, err := os.Stat(f.out); err == nil && st.IsDir() {
		return fmt.Errorf("-o %s: is a directory; give the packed file's name", f.out)
	}
	if err := checkOutNotSource(f.out, args); err != nil {
		return err
	}
	ds, err := source.Open(args, opt)
	if err != nil {
		return err
	}
	defer ds.Close()
	progressOut := stderr
	if f.quiet {
		progressOut = nil
	}
	if progressOut != nil && source.DecodesImages(ds.Kind()) {
		// The two decoders give slightly different pixels; say which runs.
		fmt.Fprintf(progressOut, "JPEG decoder: %s\n", source.JPEGDecoder(opt))
	}
	var po = pack.Options{
		Codec: f.codec, ChunkSize: chunk, Workers: f.workers,
		Shuffle: f.shuffle, Seed: f.seed, SkipBad: f.skipBad, KeepEncoded: f.keepEncoded,
		CreatedBy: "pack " + strings.Join(os.Args[1:], " "),
		Append:    f.appendTo != "", Resume: f.resume, CommitEvery: f.commitEvery,
	}
	if progressOut != nil {
		po.Progress = progressOut
	}
	rep, err := pack.Pack(ctx, ds, args, f.out, po)
	if err != nil {
		switch {
		case po.Append || po.Resume:
			return fmt.Errorf("%w (%s keeps its previous version)", err, f.out)
		case po.CommitEvery > 0:
			return fmt.Errorf("%w (%s holds what was committed, if anything; continue with --resume)", err, f.out)
		}
		return fmt.Errorf("%w (nothing was written to %s)", err, f.out)
	}
	if po.Resume && rep.Existing == 0 && rep.AlreadyPacked == 0 {
		po.Resume = false // there was nothing to resume: a fresh pack
	}
	if (po.Append || po.Resume) && rep.Samples == 0 && rep.AlreadyPacked == rep.SourceLen {
		fmt.Fprintf(stdout, "nothing to append: all %d source samples are already in %s\n", rep.SourceLen, f.out)
		return nil
	}
	if po.Append || po.Resume {
		fmt.Fprintf(stdout, "appended to %s, which held %d samples; %d source samples were already in it\n", f.out, rep.Existing, rep.AlreadyPacked)
	}
	fmt.Fprintf(stdout, "packed %d images from %s into %s: %s, %d chunks, %.1f MB of images in %.2fs (%.0f MB/s)\n",
		rep.Samples, ds.Kind(), f.out, humanBytes(rep.OutBytes), rep.Chunks, float64(rep.InBytes)/1e6,
		rep.Elapsed.Seconds(), rep.MBPerSecond())
	if len(rep.Skipped) > 0 {
		fmt.Fprintf(stderr, "skipped %d of %d images that could not be read:\n", len(rep.Skipped), rep.SourceLen)
		for _, s := range rep.Skipped {
			fmt.Fprintf(stderr, "  sample %d: %v\n", s.Index, s.Err) // the error names the file
		}
	}
	return nil
}

// checkOutNotSource refuses an output that already exists and is one of
// the source's files (by identity, so links and other spellings count): a
// mix-up such as `pack DIR -o DIR/train-images-idx3-ubyte.gz` must never
// replace the data it reads. An existing packed file is no source file
// (no source kind reads one), so it may be replaced without a search.
func checkOutNotSource(out string, sources []string) error {
	so, err := os.Stat(out)
	if err != nil || !so.Mode().IsRegular() {
		return nil
	}
	if isPacked(out) {
		return nil
	}
	for _, src := range sources {
		found := ""
		filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil || found != "" {
				return filepath.SkipAll
			}
			if d.IsDir() && d.Name() != "." && strings.HasPrefix(d.Name(), ".") && p != src {
				return filepath.SkipDir
			}
			if si, err := os.Stat(p); err == nil && !si.IsDir() && os.SameFile(so, si) {
				found = p
				return filepath.SkipAll
			}
			return nil
		})
		if found != "" {
			return fmt.Errorf("-o %s is the source file %s: refusing to overwrite an input; nothing was written (choose another output)", out, found)
		}
	}
	return nil
}

// isPacked reports whether path starts with the packed-file magic.
func isPacked(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, len(format.Magic))
	_, err = io.ReadFull(f, b)
	return err == nil && string(b) == format.Magic
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
