// Command validate is meshguard's validate proxy-wasm filter. Build with:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o dist/validate.wasm ./wasm/cmd/validate
package main

import (
	"github.com/meshguard/meshguard/wasm/abi"
	"github.com/meshguard/meshguard/wasm/filters/validate"
)

func init() { abi.SetPlugin(validate.New()) }

func main() {}
