package main

import (
	"reflect"
	"testing"

	"github.com/tsimcne/tsimcne-go/augment"
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
