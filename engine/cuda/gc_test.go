package cuda

import (
	"runtime"
	"time"
)

func runtimeGC() {
	runtime.GC()
	time.Sleep(5 * time.Millisecond)
}
