// Package version reports the build's version, set at link time.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is overridden with -ldflags "-X github.com/meshguard/meshguard/internal/version.Version=v1.2.3".
var Version = "dev"

// String describes the binary: version, VCS revision when known, and Go toolchain.
func String() string {
	rev := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = s.Value[:12]
			}
		}
	}
	return fmt.Sprintf("meshguard %s (revision %s, %s %s/%s)", Version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
