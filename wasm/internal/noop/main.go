// Command noop is a proxy-wasm filter that does nothing: the benchmark's
// floor for one request lifecycle through a stock-Go module (the exported
// calls and a context). With {"hostCalls": N} it also makes N trivial host
// calls (proxy_get_current_time_nanoseconds) per request, which measures
// what one crossing from the module to the host costs. Not shipped.
package main

import (
	"encoding/json"

	"github.com/meshguard/meshguard/wasm/abi"
)

type plugin struct{ HostCalls int }

func (p *plugin) Configure(_ abi.Host, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, p)
}
func (p *plugin) NewContext(uint32) abi.HTTPContext { return ctx{p} }
func (*plugin) Tick(abi.Host)                       {}

type ctx struct{ p *plugin }

func (c ctx) OnRequestHeaders(h abi.Host, _ bool) abi.Action {
	for range c.p.HostCalls {
		h.NowNanos()
	}
	return abi.Continue
}
func (ctx) OnResponseHeaders(abi.Host, bool) abi.Action { return abi.Continue }

func init() { abi.SetPlugin(&plugin{}) }

func main() {}
