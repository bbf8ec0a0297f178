// Command ratelimit is meshguard's ratelimit proxy-wasm filter. Build with:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o dist/ratelimit.wasm ./wasm/cmd/ratelimit
package main

import (
	"github.com/meshguard/meshguard/wasm/abi"
	"github.com/meshguard/meshguard/wasm/filters/ratelimit"
)

func init() { abi.SetPlugin(ratelimit.New()) }

func main() {}
