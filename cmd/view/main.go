// Command view serves an embedding as an interactive map in the browser,
// with every image's thumbnail read straight from the packed dataset.
//
//	view EMB.arrow [DATA.tscn] [--addr 127.0.0.1:8080] [--open]
//	view EMB.arrow [DATA.tscn] --export report.html   one self-contained HTML file
//	view EMB.arrow DATA.tscn --figure map.png         the map with a grid of thumbnails
//
// EMB is an Arrow IPC or Parquet file written by embed. The page and its
// scripts are compiled into the binary; nothing is fetched from elsewhere.
// The API behind the page (all GET):
//
//	/api/meta             JSON: rows, classes, colours, counts, schema metadata, pack
//	/api/points           binary columns: "TSVP", uint32 1, uint32 n, uint32 0,
//	                      float32 x[n], float32 y[n], int32 label[n], int32 index[n]
//	/api/thumb/{index}    PNG of sample index, the bytes `pack get` writes; ?size=S scales
//	/api/sample/{index}   JSON: index, label, class, source name, x, y
//	/api/neighbors/{index}?k=12&space=map|features   JSON: the k nearest points
//
// Errors are JSON {"error": "..."}: 400 for a malformed index or parameter,
// 404 for an index outside the map.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	"github.com/tsimcne/tsimcne-go/internal/cli"
)

func main() { cli.Main("view", newRoot()) }

type flags struct {
	addr, export, figure string
	open                 bool
	exportThumbs         int
	figureWidth          int
	figureCells          int
}

func newRoot() *cobra.Command {
	var f flags
	c := &cobra.Command{
		Use:   "view EMB.arrow|EMB.parquet [DATA.tscn]",
		Short: "Look at an embedding in the browser, with thumbnails from the pack",
		Long: `view serves the map of an embedding (embed's Arrow or Parquet file) as a web page:
every point drawn and coloured by class, a thumbnail card on hover, the image and its
nearest neighbours on click, images in place of dots when zoomed in, box selection
exported as CSV or JSON. Thumbnails are read from DATA, the pack the map was made
from; without it the map is still shown. The server listens on loopback only unless
--addr says otherwise.`,
		Example: `  view demo/mnist.arrow demo/mnist.tscn --open
  view demo/mnist.arrow demo/mnist.tscn --export mnist.html
  view demo/mnist.arrow demo/mnist.tscn --figure mnist-thumbs.png`,
		Args:          cobra.RangeArgs(1, 2),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			data := ""
			if len(args) == 2 {
				data = args[1]
			}
			return run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], data, &f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.addr, "addr", "127.0.0.1:8080", "address to listen on (port 0 picks a free one)")
	fl.BoolVar(&f.open, "open", false, "open the page in the default browser (xdg-open)")
	fl.StringVar(&f.export, "export", "", "write one self-contained HTML report here instead of serving")
	fl.IntVar(&f.exportThumbs, "export-thumbs", 3000, "thumbnails embedded in the report (a spread-out sample)")
	fl.StringVar(&f.figure, "figure", "", "write the map with a grid of thumbnails as PNG here (needs DATA)")
	fl.IntVar(&f.figureWidth, "figure-width", 4000, "width of the thumbnail figure in pixels")
	fl.IntVar(&f.figureCells, "figure-cells", 32, "thumbnail grid cells across the figure's map")
	return c
}

func run(ctx context.Context, stdout, stderr io.Writer, embPath, data string, f *flags) error {
	d, err := loadMap(embPath, data)
	if err != nil {
		return err
	}
	if d.pack != nil {
		defer d.pack.Close()
	}
	if f.figure != "" || f.export != "" {
		if f.figure != "" {
			if err := writeFigure(d, f.figure, f.figureWidth, f.figureCells); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "thumbnail figure -> %s\n", f.figure)
		}
		if f.export != "" {
			if f.exportThumbs < 0 {
				return fmt.Errorf("--export-thumbs %d: want ≥ 0", f.exportThumbs)
			}
			n, err := writeReport(d, f.export, f.exportThumbs)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "report with %d points and %d thumbnails -> %s\n", d.n, n, f.export)
		}
		return nil
	}
	s, err := newServer(d)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", f.addr, err)
	}
	if !isLoopback(ln.Addr()) {
		fmt.Fprintf(stderr, "warning: listening on %s, which is not loopback: anyone who can reach it sees the map and the images\n", ln.Addr())
	}
	url := "http://" + ln.Addr().String() + "/"
	if d.pack == nil {
		fmt.Fprintf(stderr, "no DATA given: the map is shown without thumbnails\n")
	}
	fmt.Fprintf(stdout, "serving %d points of %s at %s (Ctrl-C stops)\n", d.n, embPath, url)
	if f.open {
		if err := exec.Command("xdg-open", url).Start(); err != nil {
			fmt.Fprintf(stderr, "--open: %v; open %s yourself\n", err, url)
		}
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	// Ctrl-C is how a server is meant to stop: not an error.
	return nil
}

// isLoopback reports whether the listener is reachable from this machine
// only.
func isLoopback(a net.Addr) bool {
	t, ok := a.(*net.TCPAddr)
	return ok && t.IP.IsLoopback()
}
