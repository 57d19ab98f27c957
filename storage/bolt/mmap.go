package bolt

import (
	"math"
	"runtime"
)

// initialMmapSize is the address space bbolt maps at Open. bbolt must
// remap when the file outgrows its mapping, and a remap waits for every
// open read transaction: a backup streamed to a slow client (one read
// transaction for the whole transfer) would stall every write, every
// sign-in, until the transfer ended. Mapping 1 GiB up front (address
// space, not memory: pages are read in on use) means no remap before the
// file reaches 1 GiB, as etcd does with its 10 GiB. Not on Windows, where
// bbolt grows the file itself to the mapped size, nor on 32-bit systems,
// whose address space is too small.
var initialMmapSize = func() int {
	if runtime.GOOS == "windows" || math.MaxInt == math.MaxInt32 {
		return 0
	}
	return 1 << 30
}()
