//go:build !wasip1

package abi

// SetPlugin registers the filter. Outside wasip1 there is no host to call
// it; filter logic is tested through abitest instead.
func SetPlugin(Plugin) {}
