package main

import "github.com/tsimcne/tsimcne-go/augment"

// augmentDefault is the reference augmentation; tsimcne sets the view size.
func augmentDefault() augment.Config { return augment.DefaultConfig(32, 32) }
