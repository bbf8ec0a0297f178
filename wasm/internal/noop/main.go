// Command noop is a proxy-wasm filter that does nothing: the benchmark's
// floor for one request lifecycle through a stock-Go module (five exported
// calls and a context). Not shipped.
package main

import "github.com/meshguard/meshguard/wasm/abi"

type plugin struct{}

func (plugin) Configure(abi.Host, []byte) error  { return nil }
func (plugin) NewContext(uint32) abi.HTTPContext { return ctx{} }
func (plugin) Tick(abi.Host)                     {}

type ctx struct{}

func (ctx) OnRequestHeaders(abi.Host, bool) abi.Action  { return abi.Continue }
func (ctx) OnResponseHeaders(abi.Host, bool) abi.Action { return abi.Continue }

func init() { abi.SetPlugin(plugin{}) }

func main() {}
