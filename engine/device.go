package engine

import (
	"fmt"
	"sync"

	"github.com/tsimcne/tsimcne-go/augment"
)

// DeviceOptions configure a backend opened by device name (OpenBackend).
type DeviceOptions struct {
	// Threads and GEMM configure the CPU backend (CPUOptions).
	Threads int
	GEMM    GEMM
	// Ordinal is the GPU a device backend opens (0 = the first).
	Ordinal int
}

// DeviceDriver opens backends of one kind of device. A GPU backend package
// registers its driver when it is imported (engine/cuda registers
// DeviceCUDA), so that programs open backends by name and never name the
// backend's types.
type DeviceDriver struct {
	// Unavailable returns "" when a device can be opened, else why not,
	// in one line for a log.
	Unavailable func() string
	// Open opens a backend on GPU o.Ordinal.
	Open func(o DeviceOptions) (Backend, error)
}

var (
	driversMu sync.Mutex
	drivers   = map[Device]DeviceDriver{}
)

// RegisterDevice makes OpenBackend open d with drv. It is called from a
// backend package's init; registering DeviceAuto or DeviceCPU panics.
func RegisterDevice(d Device, drv DeviceDriver) {
	if d == DeviceAuto || d == DeviceCPU || d == "" {
		panic(fmt.Sprintf("engine: RegisterDevice(%q): a reserved device", d))
	}
	driversMu.Lock()
	defer driversMu.Unlock()
	drivers[d] = drv
}

func driver(d Device) (DeviceDriver, bool) {
	driversMu.Lock()
	defer driversMu.Unlock()
	drv, ok := drivers[d]
	return drv, ok
}

// OpenBackend opens the backend of device d. DeviceCPU is the CPU backend;
// DeviceCUDA the registered CUDA backend, or an error saying why it cannot
// be opened; DeviceAuto (and the zero Device) the CUDA backend when a GPU
// can be used, else the CPU backend, with fallback saying why the GPU was
// not used (empty otherwise).
func OpenBackend(d Device, o DeviceOptions) (be Backend, fallback string, err error) {
	cpu := func() (Backend, error) {
		c, err := NewCPU(CPUOptions{Threads: o.Threads, GEMM: o.GEMM})
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	switch d {
	case DeviceCPU:
		be, err = cpu()
		return be, "", err
	case DeviceCUDA:
		drv, ok := driver(d)
		if !ok {
			return nil, "", fmt.Errorf("engine: device %s: this program was built without the CUDA backend", d)
		}
		be, err := drv.Open(o)
		if err != nil {
			return nil, "", fmt.Errorf("engine: device %s: %w", d, err)
		}
		return be, "", nil
	case DeviceAuto, "":
		drv, ok := driver(DeviceCUDA)
		why := ""
		if ok {
			why = drv.Unavailable()
		}
		switch {
		case !ok:
			fallback = "no CUDA backend in this program, using the CPU"
		case why != "":
			fallback = fmt.Sprintf("no CUDA device (%s), using the CPU", why)
		default:
			g, gerr := drv.Open(o)
			if gerr == nil {
				return g, "", nil
			}
			fallback = fmt.Sprintf("CUDA device unusable (%v), using the CPU", gerr)
		}
		be, err = cpu()
		return be, fallback, err
	}
	_, err = ParseDevice(string(d))
	return nil, "", err
}

// HostAllocator supplies host memory, e.g. a loader's batch slots (it
// satisfies loader.Allocator).
type HostAllocator interface {
	// Alloc returns n bytes.
	Alloc(n int) ([]byte, error)
	// Free releases a buffer from Alloc.
	Free(buf []byte)
}

// PinnedHost is implemented by device backends whose transfers run at full
// speed, and asynchronously, from page-locked host memory.
type PinnedHost interface {
	// PinnedAllocator allocates page-locked host memory.
	PinnedAllocator() HostAllocator
}

// ViewPipelineOptions size a ViewPipeline.
type ViewPipelineOptions struct {
	// Augment is the view augmentation (OutH×OutW views). Rotation is not
	// supported.
	Augment augment.Config
	// SrcH, SrcW are the size of one image's uint8 region in a batch
	// (loader.Batch.SrcH/SrcW with Output = loader.Source8).
	SrcH, SrcW int
	// Images is the most images per batch; Views the views per image (2
	// for training, 1 for embedding).
	Images, Views int
	// Stages is the number of batches in flight (default 2): while the
	// model trains on stage k's views, batch k+1 is copied and augmented
	// into the next stage.
	Stages int
}

// ViewPipeline makes a model's input views on the device from a loader's
// uint8 images and drawn augment.Params (loader Output = loader.Source8,
// in the backend's pinned memory), so views never visit the host.
type ViewPipeline interface {
	// Submit queues the copy and augmentation of a batch of n images
	// and returns the device buffer of its views, for Model.ForwardBuf;
	// release (if not nil) is called once the batch has been copied.
	Submit(src8 []uint8, params []augment.Params, n int, release func()) (Buf, error)
	// Consumed says that the step reading the last Submit's views has
	// been queued, so their buffers may be reused.
	Consumed() error
	// WaitReleased waits until at most keep submitted batches have not
	// yet been released.
	WaitReleased(keep int) error
	// Close waits for the work in flight and frees the pipeline.
	Close() error
}

// ViewAugmenter is implemented by backends that augment views on the
// device (the GPU data pipeline).
type ViewAugmenter interface {
	PinnedHost
	// NewViewPipeline allocates a pipeline for batches of o's size.
	NewViewPipeline(o ViewPipelineOptions) (ViewPipeline, error)
}
