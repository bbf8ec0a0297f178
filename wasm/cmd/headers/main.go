// Command headers is meshguard's headers proxy-wasm filter. Build with:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o dist/headers.wasm ./wasm/cmd/headers
package main

import (
	"github.com/meshguard/meshguard/wasm/abi"
	"github.com/meshguard/meshguard/wasm/filters/headers"
)

func init() { abi.SetPlugin(headers.New()) }

func main() {}
