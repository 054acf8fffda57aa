package main

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tsimcne/tsimcne-go/augment"
	"github.com/tsimcne/tsimcne-go/format"
	"github.com/tsimcne/tsimcne-go/loader"
	"github.com/tsimcne/tsimcne-go/tsimcne"
)

// TestFlagDefaults: with no flags, the Config is tsimcne's defaults (the
// flags take their defaults from there) and the augmentation is the
// reference's, not an override.
func TestFlagDefaults(t *testing.T) {
	cmd, f := newCommand()
	if err := cmd.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	got, err := configFrom(cmd, f)
	if err != nil {
		t.Fatal(err)
	}
	want := tsimcne.Config{CheckpointEvery: 10}.Defaults() // --checkpoint-every is train's own
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("flag defaults give\n%+v\nwant tsimcne's\n%+v", got, want)
	}
}

// TestAugmentOverrideByFlag: an augmentation flag overrides the reference
// augmentation when it is given, even with the default value, and only then.
func TestAugmentOverrideByFlag(t *testing.T) {
	def := augment.DefaultConfig(32, 32)
	for _, c := range []struct {
		args            []string
		override        bool
		scaleMin, flipP float64
	}{
		{nil, false, 0, 0},
		{[]string{"--seed", "3"}, false, 0, 0},
		{[]string{"--flip-p", "0.5"}, true, def.ScaleMin, 0.5},
		{[]string{"--crop-scale-min", "0.2"}, true, 0.2, def.FlipP},
		{[]string{"--flip-p", "0", "--crop-scale-min", "0.5"}, true, 0.5, 0},
	} {
		cmd, f := newCommand()
		if err := cmd.ParseFlags(c.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := configFrom(cmd, f)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if (cfg.Augment != nil) != c.override {
			t.Fatalf("%v: override %v, want %v", c.args, cfg.Augment != nil, c.override)
		}
		if c.override {
			a := def
			a.ScaleMin, a.FlipP = c.scaleMin, c.flipP
			if *cfg.Augment != a {
				t.Errorf("%v: augmentation %+v, want %+v", c.args, *cfg.Augment, a)
			}
		}
	}
}

// TestOrderFlags: --order and --window become Config.Order and Window (the
// window defaulted for quasi-random); auto is left to resolveOrder (a
// --window alone asks for quasi-random); bad values are refused.
func TestOrderFlags(t *testing.T) {
	for _, c := range []struct {
		args   []string
		order  string
		window int
		err    string
	}{
		{nil, tsimcne.OrderShuffle, 0, ""}, // auto, until resolveOrder sees the data
		{[]string{"--order", "shuffle"}, tsimcne.OrderShuffle, 0, ""},
		{[]string{"--order", "quasi-random"}, tsimcne.OrderQuasiRandom, loader.DefaultWindow, ""},
		{[]string{"--order", "quasi-random", "--window", "4"}, tsimcne.OrderQuasiRandom, 4, ""},
		{[]string{"--window", "4"}, tsimcne.OrderQuasiRandom, 4, ""},
		{[]string{"--order", "random"}, "", 0, `order "random": want shuffle or quasi-random`},
		{[]string{"--order", "shuffle", "--window", "4"}, "", 0, "window 4: the window belongs to the quasi-random order"},
		{[]string{"--window", "-1"}, "", 0, "--window -1"},
		{[]string{"--order", "quasi-random", "--train-subset", "5"}, "", 0, "quasi-random with a train subset"},
	} {
		cmd, f := newCommand()
		if err := cmd.ParseFlags(c.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := configFrom(cmd, f)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: error %v, want one containing %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil || cfg.Order != c.order || cfg.Window != c.window {
			t.Errorf("%v: order %q window %d (%v), want %q %d", c.args, cfg.Order, cfg.Window, err, c.order, c.window)
		}
	}
}

// orderPack writes a pack of 300 smooth 32×32 images (lz4 compresses
// them) with the given codec and returns it open.
func orderPack(t *testing.T, codec string) *format.Reader {
	t.Helper()
	path := filepath.Join(t.TempDir(), codec+".tscn")
	w, err := format.Create(path, format.Schema{Classes: []string{"a", "b"}}, &format.WriterOptions{Codec: codec})
	if err != nil {
		t.Fatal(err)
	}
	pix := make([]byte, 32*32*3)
	for i := range 300 {
		for k := range pix {
			pix[k] = byte(k/96 + i)
		}
		if err := w.Add(&format.Sample{Index: i, Label: int32(i % 2), Label2: -1, Height: 32, Width: 32, Channels: 3, Data: pix}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := format.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestResolveOrder: --order auto trains quasi-random when the compressed
// chunks, decompressed, exceed the chunk cache, or when the file exceeds
// half of the memory, and says why (warning about a pack in dataset
// order); shuffle when neither holds, and for a --train-subset.
func TestResolveOrder(t *testing.T) {
	lz4, raw := orderPack(t, "lz4"), orderPack(t, "none") // 921,600 bytes of images each
	if lz4.Chunk(0).Codec == format.CodecNone {
		t.Fatal("the lz4 test pack is not compressed")
	}
	for _, c := range []struct {
		name string
		r    *format.Reader
		cfg  tsimcne.Config
		lim  orderLimits
		want string
		why  string
	}{
		{"lz4, fits the cache and memory", lz4, tsimcne.Config{}, orderLimits{1 << 20, 1 << 30}, tsimcne.OrderShuffle, ""},
		{"lz4, beyond the cache", lz4, tsimcne.Config{}, orderLimits{1 << 10, 1 << 30}, tsimcne.OrderQuasiRandom, "chunk cache"},
		{"lz4, beyond the cache, train subset", lz4, tsimcne.Config{TrainSubset: 100}, orderLimits{1 << 10, 1 << 30}, tsimcne.OrderShuffle, ""},
		{"raw, beyond the cache: not read through it", raw, tsimcne.Config{}, orderLimits{1 << 10, 1 << 30}, tsimcne.OrderShuffle, ""},
		{"raw, beyond half of the memory", raw, tsimcne.Config{}, orderLimits{1 << 10, 1 << 20}, tsimcne.OrderQuasiRandom, "of memory"},
		{"raw, memory unknown", raw, tsimcne.Config{}, orderLimits{1 << 10, 0}, tsimcne.OrderShuffle, ""},
	} {
		var logged []string
		logf := func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }
		got := resolveOrder(c.r, &c.cfg, c.lim, logf)
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
		if c.why == "" && len(logged) != 0 {
			t.Errorf("%s: logged %q", c.name, logged)
		}
		if c.why != "" && (len(logged) != 2 || !strings.Contains(logged[0], "order: quasi-random") ||
			!strings.Contains(logged[0], c.why) || !strings.Contains(logged[1], "pack --shuffle")) {
			t.Errorf("%s: logged %q; want the choice, why (%q), and the warning about dataset order", c.name, logged, c.why)
		}
	}
}
