package format

import (
	"fmt"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec is the compression of one chunk.
type Codec uint8

// The codecs. A file names one codec in its schema; each chunk records the
// codec it was actually stored with, because a chunk that does not shrink
// (already-encoded JPEGs, noise) is stored as CodecNone instead.
const (
	CodecNone Codec = 0
	CodecLZ4  Codec = 1
	CodecZstd Codec = 2
)

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// ParseCodec turns "none", "lz4" or "zstd" into a Codec.
func ParseCodec(s string) (Codec, error) {
	c, err := parseCodec(s)
	if err != nil {
		return 0, fmt.Errorf("format: %w", err)
	}
	return c, nil
}

// parseCodec is ParseCodec without the package prefix, for errors that
// format wraps itself.
func parseCodec(s string) (Codec, error) {
	switch strings.ToLower(s) {
	case "none", "raw", "":
		return CodecNone, nil
	case "lz4":
		return CodecLZ4, nil
	case "zstd", "zst":
		return CodecZstd, nil
	}
	return 0, fmt.Errorf("unknown codec %q (want none, lz4 or zstd)", s)
}

// zstd encoders and decoders are expensive to build and safe for concurrent
// EncodeAll/DecodeAll, so one of each serves the whole process.
var (
	zstdEncOnce sync.Once
	zstdEnc     *zstd.Encoder
	zstdDecOnce sync.Once
	zstdDec     *zstd.Decoder
)

func zstdEncoder() *zstd.Encoder {
	zstdEncOnce.Do(func() {
		zstdEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	})
	return zstdEnc
}

func zstdDecoder() *zstd.Decoder {
	zstdDecOnce.Do(func() {
		zstdDec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<32))
	})
	return zstdDec
}

// compressor compresses chunks for one writer goroutine; lz4's compressor
// holds a hash table that is reused across chunks.
type compressor struct {
	lz4 lz4.Compressor
	buf []byte
}

// compress returns the stored bytes and the codec actually used. The result
// aliases the compressor's buffer or raw and is valid until the next call.
func (c *compressor) compress(codec Codec, raw []byte) ([]byte, Codec, error) {
	switch codec {
	case CodecNone:
		return raw, CodecNone, nil
	case CodecLZ4:
		n := lz4.CompressBlockBound(len(raw))
		if cap(c.buf) < n {
			c.buf = make([]byte, n)
		}
		m, err := c.lz4.CompressBlock(raw, c.buf[:n])
		if err != nil {
			return nil, 0, fmt.Errorf("lz4: %w", err)
		}
		if m == 0 || m >= len(raw) { // incompressible
			return raw, CodecNone, nil
		}
		return c.buf[:m], CodecLZ4, nil
	case CodecZstd:
		c.buf = zstdEncoder().EncodeAll(raw, c.buf[:0])
		if len(c.buf) >= len(raw) {
			return raw, CodecNone, nil
		}
		return c.buf, CodecZstd, nil
	}
	return nil, 0, fmt.Errorf("unknown codec %d", codec)
}

// decompress expands stored into dst, which must have exactly the chunk's
// raw length.
func decompress(codec Codec, stored, dst []byte) error {
	switch codec {
	case CodecNone:
		if len(stored) != len(dst) {
			return fmt.Errorf("stored length %d differs from raw length %d", len(stored), len(dst))
		}
		copy(dst, stored)
		return nil
	case CodecLZ4:
		n, err := lz4.UncompressBlock(stored, dst)
		if err != nil {
			return fmt.Errorf("lz4: %w", err)
		}
		if n != len(dst) {
			return fmt.Errorf("lz4: expanded to %d bytes, want %d", n, len(dst))
		}
		return nil
	case CodecZstd:
		out, err := zstdDecoder().DecodeAll(stored, dst[:0])
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		if len(out) != len(dst) || (len(out) > 0 && &out[0] != &dst[0]) {
			return fmt.Errorf("zstd: expanded to %d bytes, want %d", len(out), len(dst))
		}
		return nil
	}
	return fmt.Errorf("unknown codec %d", codec)
}
