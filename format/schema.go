package format

import (
	"encoding/json"
	"fmt"
	"strings"
)

// ImageFormat says how one sample's image bytes are stored.
type ImageFormat uint8

// Image formats. FormatRaw is uint8 pixels, row-major, channels interleaved
// (HWC); the others are encoded files stored exactly as given.
const (
	FormatRaw ImageFormat = iota
	FormatJPEG
	FormatPNG
	FormatGIF
	FormatBMP
	FormatWebP
	numFormats
)

var formatNames = [numFormats]string{"raw", "jpeg", "png", "gif", "bmp", "webp"}

func (f ImageFormat) String() string {
	if f < numFormats {
		return formatNames[f]
	}
	return fmt.Sprintf("format(%d)", uint8(f))
}

// ParseImageFormat maps "jpeg", "png", ... (or "jpg") to an ImageFormat.
func ParseImageFormat(s string) (ImageFormat, error) {
	s = strings.ToLower(s)
	if s == "jpg" {
		s = "jpeg"
	}
	for i, n := range formatNames {
		if n == s {
			return ImageFormat(i), nil
		}
	}
	return 0, fmt.Errorf("format: unknown image format %q", s)
}

// ImageSpec describes the image field of every sample.
type ImageSpec struct {
	// Encoded is true when images are stored as encoded files (JPEG, PNG, ...)
	// rather than raw pixels.
	Encoded bool `json:"encoded"`
	// Fixed is true when every sample has the same Height, Width and Channels;
	// otherwise each sample's shape is in the index and the fields here are 0.
	// A writer given Fixed=false sets it at Close when all samples agree.
	Fixed    bool `json:"fixed"`
	Height   int  `json:"height,omitempty"`
	Width    int  `json:"width,omitempty"`
	Channels int  `json:"channels,omitempty"`
}

// Source describes where the data came from.
type Source struct {
	Kind        string   `json:"kind"`                  // "cifar10", "cifar100", "idx", "folder", ...
	Description string   `json:"description,omitempty"` // human text
	Paths       []string `json:"paths,omitempty"`
}

// Field describes one per-sample field, so that a reader can list what a
// file holds without knowing this package.
type Field struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Shape string `json:"shape,omitempty"`
	Doc   string `json:"doc,omitempty"`
}

// Schema is the self-description of a packed file, stored as JSON. Readers
// ignore keys they do not know, which is what lets minor versions add keys.
type Schema struct {
	Image ImageSpec `json:"image"`
	// Classes are the names of the label values: Classes[label].
	Classes []string `json:"classes"`
	// Label2Name names the secondary label ("coarse_label" for CIFAR-100) and
	// Classes2 its values; both empty when samples have no secondary label.
	Label2Name string   `json:"label2_name,omitempty"`
	Classes2   []string `json:"classes2,omitempty"`
	// HasNames is true when samples carry their source name.
	HasNames bool   `json:"has_names"`
	Source   Source `json:"source"`
	// Fields is filled in by the writer from the rest of the schema.
	Fields []Field `json:"fields"`
	// Codec is the file's compression choice and ChunkSize its target chunk
	// size in uncompressed bytes; both are filled in by the writer.
	Codec     string `json:"codec"`
	ChunkSize int    `json:"chunk_size"`
	// Shuffled and ShuffleSeed record a write-time shuffle of storage order.
	Shuffled    bool   `json:"shuffled"`
	ShuffleSeed uint64 `json:"shuffle_seed,omitempty"`
	// CreatedBy names the program that wrote the file.
	CreatedBy string `json:"created_by,omitempty"`
}

// fields derives the field list from the schema.
func (s *Schema) fields() []Field {
	img := Field{Name: "image", Type: "uint8", Shape: "[height, width, channels] (HWC)", Doc: "raw pixels"}
	if s.Image.Fixed {
		img.Shape = fmt.Sprintf("[%d, %d, %d]", s.Image.Height, s.Image.Width, s.Image.Channels)
	}
	if s.Image.Encoded {
		img = Field{Name: "image", Type: "bytes", Doc: "encoded image file (jpeg, png, gif, bmp, webp), stored as given"}
	}
	f := []Field{
		img,
		{Name: "label", Type: "int32", Doc: "class index into classes"},
		{Name: "index", Type: "int64", Doc: "the sample's position in dataset order"},
	}
	if s.Label2Name != "" {
		f = append(f, Field{Name: s.Label2Name, Type: "int32", Doc: "secondary label, index into classes2"})
	}
	if s.HasNames {
		f = append(f, Field{Name: "name", Type: "string", Doc: "the sample's name in its source"})
	}
	return f
}

func decodeSchema(b []byte) (*Schema, error) {
	var s Schema
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, &DamageError{Section: "schema", Detail: err.Error()}
	}
	if s.Image.Fixed && (s.Image.Height <= 0 || s.Image.Width <= 0 || s.Image.Channels <= 0) {
		return nil, &DamageError{Section: "schema", Detail: fmt.Sprintf("fixed image shape %dx%dx%d is not positive", s.Image.Height, s.Image.Width, s.Image.Channels)}
	}
	return &s, nil
}
