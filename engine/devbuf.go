package engine

// DeviceBuf wraps a device allocation of n float32 elements as a Buf, for
// backends outside this package (engine/cuda): dev is the backend's own
// handle, returned unchanged in Buf.Dev. Such a Buf has no host memory.
func DeviceBuf(dev any, n int) Buf { return Buf{Dev: dev, n: n} }
