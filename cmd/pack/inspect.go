package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tsimcne/tsimcne-go/format"
	"github.com/tsimcne/tsimcne-go/internal/atomicfile"
	"github.com/tsimcne/tsimcne-go/internal/cli"
	"github.com/tsimcne/tsimcne-go/internal/progress"
	"github.com/tsimcne/tsimcne-go/internal/sampleimg"
)

// Info is what `pack info --json` prints.
type Info struct {
	Path        string           `json:"path"`
	Version     string           `json:"version"`
	FileBytes   int64            `json:"file_bytes"`
	Samples     int              `json:"samples"`
	Classes     []string         `json:"classes"`
	Label2Name  string           `json:"label2_name,omitempty"`
	Classes2    []string         `json:"classes2,omitempty"`
	ClassCounts []int            `json:"class_counts"`
	Fields      []format.Field   `json:"fields"`
	Image       format.ImageSpec `json:"image"`
	Chunks      int              `json:"chunks"`
	Codec       string           `json:"codec"`
	ChunkSize   int              `json:"chunk_size"`
	RawBytes    int64            `json:"raw_bytes"`
	StoredBytes int64            `json:"stored_bytes"`
	Shuffled    bool             `json:"shuffled"`
	ShuffleSeed uint64           `json:"shuffle_seed,omitempty"`
	Source      format.Source    `json:"source"`
	CreatedBy   string           `json:"created_by,omitempty"`
}

func readInfo(r *format.Reader) Info {
	s := r.Schema()
	maj, min := r.Version()
	in := Info{
		Path: r.Path(), Version: fmt.Sprintf("%d.%d", maj, min), FileBytes: r.Size(), Samples: r.Len(),
		Classes: s.Classes, Label2Name: s.Label2Name, Classes2: s.Classes2, Fields: s.Fields, Image: s.Image,
		Chunks: r.NumChunks(), Codec: s.Codec, ChunkSize: s.ChunkSize, Shuffled: s.Shuffled, ShuffleSeed: s.ShuffleSeed,
		Source: s.Source, CreatedBy: s.CreatedBy,
	}
	if in.Classes == nil {
		in.Classes = []string{}
	}
	in.ClassCounts = make([]int, len(s.Classes))
	for i := range r.Len() {
		if l := int(r.Label(i)); l >= 0 && l < len(in.ClassCounts) {
			in.ClassCounts[l]++
		}
	}
	for c := range r.NumChunks() {
		ci := r.Chunk(c)
		in.RawBytes += int64(ci.Raw)
		in.StoredBytes += int64(ci.Stored)
	}
	return in
}

func newInfo() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "info FILE",
		Short: "Summarise a packed file (--json for machines)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := format.Open(args[0], nil)
			if err != nil {
				return err
			}
			defer r.Close()
			in := readInfo(r)
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(in)
			}
			printInfo(out, &in)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func printInfo(w io.Writer, in *Info) {
	fmt.Fprintf(w, "file:     %s (%s, format %s)\n", in.Path, humanBytes(in.FileBytes), in.Version)
	fmt.Fprintf(w, "source:   %s", in.Source.Kind)
	if in.Source.Description != "" {
		fmt.Fprintf(w, " — %s", in.Source.Description)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "samples:  %d\n", in.Samples)
	img := "raw uint8 pixels, HWC"
	if in.Image.Encoded {
		img = "encoded files (stored as given)"
	}
	if in.Image.Fixed {
		img += fmt.Sprintf(", %dx%d, %d channel(s)", in.Image.Width, in.Image.Height, in.Image.Channels)
	} else {
		img += ", per-sample size"
	}
	fmt.Fprintf(w, "images:   %s\n", img)
	fmt.Fprintf(w, "classes:  %d\n", len(in.Classes))
	for i, name := range in.Classes {
		if i == 20 && len(in.Classes) > 24 {
			fmt.Fprintf(w, "          ... %d more\n", len(in.Classes)-20)
			break
		}
		fmt.Fprintf(w, "          %3d %-20s %d\n", i, name, in.ClassCounts[i])
	}
	if in.Label2Name != "" {
		fmt.Fprintf(w, "%s: %d classes\n", in.Label2Name, len(in.Classes2))
	}
	var fields []string
	for _, f := range in.Fields {
		fields = append(fields, f.Name+" "+f.Type+f.Shape)
	}
	fmt.Fprintf(w, "fields:   %s\n", strings.Join(fields, "; "))
	ratio := 1.0
	if in.StoredBytes > 0 {
		ratio = float64(in.RawBytes) / float64(in.StoredBytes)
	}
	fmt.Fprintf(w, "storage:  %d chunks of ~%s, codec %s, %s -> %s (%.2fx)\n", in.Chunks, humanBytes(int64(in.ChunkSize)), in.Codec,
		humanBytes(in.RawBytes), humanBytes(in.StoredBytes), ratio)
	if in.Shuffled {
		fmt.Fprintf(w, "order:    shuffled at write time (seed %d); indices are dataset order\n", in.ShuffleSeed)
	} else {
		fmt.Fprintf(w, "order:    dataset order\n")
	}
}

func newVerify() *cobra.Command {
	var quiet bool
	c := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check every checksum; exit 0 when intact, 2 naming what is damaged",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var bar *progress.Bar
			var prog func(done, total int)
			if !quiet {
				prog = func(done, total int) {
					if bar == nil {
						bar = progress.New(os.Stderr, "verify", int64(total), "chunks")
					}
					bar.Set(int64(done), 0)
				}
			}
			err := format.VerifyFileContext(cmd.Context(), args[0], prog)
			if bar != nil {
				bar.Finish()
			}
			var de *format.DamageError
			if err != nil && !errors.As(err, &de) {
				// Not damage: the file cannot be opened (missing, a
				// directory, no permission), or the check was interrupted.
				return err
			}
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "pack verify: %s is DAMAGED:\n", args[0])
				for _, line := range strings.Split(err.Error(), "\n") {
					fmt.Fprintln(cmd.ErrOrStderr(), "  "+line)
				}
				return cli.ExitError(2)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK\n", args[0])
			return nil
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	return c
}

func newGet() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "get FILE INDEX",
		Short: "Write sample INDEX (dataset order) as PNG and print its label",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			idx, err := strconv.Atoi(args[1])
			if err != nil {
				return fmt.Errorf("INDEX %q: not an integer", args[1])
			}
			if idx < 0 {
				return fmt.Errorf("INDEX %d: samples are numbered from 0", idx)
			}
			r, err := format.Open(args[0], nil)
			if err != nil {
				return err
			}
			defer r.Close()
			s, err := r.Get(idx)
			if err != nil {
				return err
			}
			img, err := sampleimg.Image(&s)
			if err != nil {
				return fmt.Errorf("%s: sample %d: %w", args[0], idx, err)
			}
			if out == "" {
				out = fmt.Sprintf("sample-%d.png", idx)
			}
			if err := atomicfile.CheckNotInput("-o", out, args[0]); err != nil {
				return err
			}
			if err := atomicfile.Write(out, 0o644, func(w io.Writer) error { return png.Encode(w, img) }); err != nil {
				return err
			}
			classes := r.Schema().Classes
			name := ""
			if int(s.Label) < len(classes) {
				name = " (" + classes[s.Label] + ")"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sample %d: label %d%s, %dx%dx%d", idx, s.Label, name, s.Width, s.Height, s.Channels)
			if s.Label2 >= 0 && r.Schema().Label2Name != "" {
				fmt.Fprintf(cmd.OutOrStdout(), ", %s %d", r.Schema().Label2Name, s.Label2)
			}
			if s.Name != "" {
				fmt.Fprintf(cmd.OutOrStdout(), ", from %s", s.Name)
			}
			fmt.Fprintf(cmd.OutOrStdout(), " -> %s\n", out)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "PNG file to write (default sample-INDEX.png)")
	// A negative INDEX looks like a flag to the parser; say what is wrong
	// with it instead of "unknown shorthand flag".
	c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		msg := err.Error()
		if i := strings.LastIndex(msg, " in -"); i >= 0 && strings.HasPrefix(msg, "unknown shorthand flag") {
			if a := msg[i+4:]; strings.Trim(a[1:], "0123456789") == "" {
				return fmt.Errorf("INDEX %s: samples are numbered from 0 (a negative number is no index)", a)
			}
		}
		return err
	})
	return c
}
