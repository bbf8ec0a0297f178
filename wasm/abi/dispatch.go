package abi

import "fmt"

// Dispatcher routes the proxy-wasm callbacks to a Plugin and its stream
// contexts, whatever order the host calls them in: the module's exports
// (exports_wasip1.go) are thin wrappers around one Dispatcher, and tests
// drive a Dispatcher natively with any call sequence (FuzzCallOrders).
//
// Every rule here fails closed:
//   - streams of a plugin that never accepted a configuration answer 503
//     (a host may create them although configure failed: Envoy does not,
//     others may), so no filter runs on its zero values;
//   - a filter that panics answers 500 (the panic is logged, not spread);
//   - request headers for a stream the host never created, or already
//     deleted, answer 500 instead of passing unchecked.
//
// A refused reconfiguration leaves the last good one in force (plugins
// apply a configuration only once it validates).
type Dispatcher struct {
	plugin     Plugin
	contexts   contextTable
	configured bool
}

// NewDispatcher dispatches to p (nil: every configure fails).
func NewDispatcher(p Plugin) *Dispatcher { return &Dispatcher{plugin: p} }

// ContextCreate is proxy_on_context_create: parent 0 is the root context.
func (d *Dispatcher) ContextCreate(id, parent uint32) {
	if parent == 0 || d.plugin == nil || id == 0 {
		return
	}
	if !d.configured {
		d.contexts.put(id, unconfigured{})
		return
	}
	d.contexts.put(id, d.plugin.NewContext(id))
}

// Configure is proxy_on_configure; false refuses the configuration.
func (d *Dispatcher) Configure(h Host, cfg []byte) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			h.Log(LogCritical, fmt.Sprintf("plugin configuration panicked: %v", r))
			ok = false
		}
	}()
	if d.plugin == nil {
		h.Log(LogCritical, "no plugin registered")
		return false
	}
	if err := d.plugin.Configure(h, cfg); err != nil {
		h.Log(LogCritical, "invalid plugin configuration, refusing to start: "+err.Error())
		return false
	}
	d.configured = true
	return true
}

// RequestHeaders is proxy_on_request_headers.
func (d *Dispatcher) RequestHeaders(h Host, id uint32, eos bool) Action {
	return d.guard(h, id, true, func(c HTTPContext) Action { return c.OnRequestHeaders(h, eos) })
}

// ResponseHeaders is proxy_on_response_headers. A response of a stream
// the filter does not know passes: its request never got past the filter.
func (d *Dispatcher) ResponseHeaders(h Host, id uint32, eos bool) Action {
	return d.guard(h, id, false, func(c HTTPContext) Action { return c.OnResponseHeaders(h, eos) })
}

// Delete is proxy_on_delete; the context is not used again.
func (d *Dispatcher) Delete(id uint32) {
	if c, ok := d.contexts.remove(id); ok {
		c.OnDelete()
	}
}

// Tick is proxy_on_tick.
func (d *Dispatcher) Tick(h Host) {
	defer func() {
		if r := recover(); r != nil {
			h.Log(LogError, fmt.Sprintf("filter tick panicked: %v", r))
		}
	}()
	if d.plugin != nil && d.configured {
		d.plugin.Tick(h)
	}
}

// guard fails closed: a panicking filter answers 500 rather than letting
// the request through unchecked.
func (d *Dispatcher) guard(h Host, id uint32, request bool, f func(HTTPContext) Action) (a Action) {
	defer func() {
		if r := recover(); r != nil {
			h.Log(LogError, fmt.Sprintf("filter panicked: %v", r))
			h.SendLocalResponse(500, "internal filter error\n", nil)
			a = Pause
		}
	}()
	c, ok := d.contexts.get(id)
	if !ok {
		if request {
			h.Log(LogError, fmt.Sprintf("request headers for unknown stream %d: refused", id))
			h.SendLocalResponse(500, "internal filter error\n", nil)
			return Pause
		}
		return Continue
	}
	return f(c)
}
