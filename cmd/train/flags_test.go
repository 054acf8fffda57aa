package main

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/tsimcne/tsimcne-go/augment"
	"github.com/tsimcne/tsimcne-go/format"
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

// TestOrderFlags: --order and --window become Config.Order and Window; auto
// is left for resolveOrder (a --window alone asks for quasi-random); bad
// values are refused naming the flag.
func TestOrderFlags(t *testing.T) {
	for _, c := range []struct {
		args   []string
		order  string
		window int
		err    string
	}{
		{nil, "", 0, ""},
		{[]string{"--order", "shuffle"}, tsimcne.OrderShuffle, 0, ""},
		{[]string{"--order", "quasi-random"}, tsimcne.OrderQuasiRandom, 0, ""},
		{[]string{"--order", "quasi-random", "--window", "4"}, tsimcne.OrderQuasiRandom, 4, ""},
		{[]string{"--window", "4"}, tsimcne.OrderQuasiRandom, 4, ""},
		{[]string{"--order", "random"}, "", 0, `--order "random"`},
		{[]string{"--order", "shuffle", "--window", "4"}, "", 0, "--window 4: the window belongs to --order quasi-random"},
		{[]string{"--window", "-1"}, "", 0, "--window -1"},
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

// TestResolveOrder: --order auto trains quasi-random when the decompressed
// images exceed the chunk cache (and says so, warning about a pack in
// dataset order), shuffle when they fit or for a --train-subset.
func TestResolveOrder(t *testing.T) {
	data := smallData(t) // 300 images of 32×32×3: 921,600 bytes
	r, err := format.Open(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var logged []string
	logf := func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }
	if got := resolveOrder(r, &tsimcne.Config{}, 1<<20, logf); got != tsimcne.OrderShuffle || len(logged) != 0 {
		t.Errorf("images within the cache: %q, logged %q; want shuffle, nothing logged", got, logged)
	}
	if got := resolveOrder(r, &tsimcne.Config{TrainSubset: 100}, 1<<10, logf); got != tsimcne.OrderShuffle {
		t.Errorf("a train subset: %q, want shuffle", got)
	}
	if got := resolveOrder(r, &tsimcne.Config{}, 1<<10, logf); got != tsimcne.OrderQuasiRandom {
		t.Errorf("images beyond the cache: %q, want quasi-random", got)
	}
	if len(logged) != 2 || !strings.Contains(logged[0], "order: quasi-random") || !strings.Contains(logged[1], "pack --shuffle") {
		t.Errorf("logged %q; want the choice and the warning about dataset order", logged)
	}
}
