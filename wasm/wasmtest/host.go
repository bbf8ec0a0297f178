// Package wasmtest runs meshguard's .wasm filters the way Envoy does, in
// wazero: the proxy-wasm ABI v0.2.1 host functions, one module instance
// (VM) per worker thread sharing VM-wide shared data with compare-and-swap,
// full request/response lifecycles, ticks, and Envoy's limited WASI — in
// particular poll_oneoff is not serviced, so a filter relying on Go timers
// fails here as it would in older Envoys.
package wasmtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/meshguard/meshguard/wasm/abi"
)

// errnoNoSys is WASI's ENOSYS.
const errnoNoSys = 52

// Host is a proxy (one per module): it owns the runtime, shared data, clock
// and properties, and creates VMs.
type Host struct {
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	now      atomic.Int64
	props    map[string]string
	env      []string // KEY=VALUE, for VMs created after SetEnv

	sharedMu sync.Mutex
	shared   map[string]*sharedEntry
	casSeq   uint32
	casFails atomic.Int64

	logMu sync.Mutex
	logs  []string
}

type sharedEntry struct {
	value []byte
	cas   uint32
}

// compilations is shared by every Host: compiling a 3.5 MB Go module is
// the slowest step, and tests create many hosts for the same modules.
var compilations = wazero.NewCompilationCache()

// NewHost compiles a filter module.
func NewHost(ctx context.Context, wasm []byte) (*Host, error) {
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(compilations))
	h := &Host{rt: rt, props: map[string]string{}, shared: map[string]*sharedEntry{}}
	h.now.Store(1_800_000_000_000_000_000)
	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("compile: %w", err)
	}
	h.compiled = compiled
	if err := h.instantiateEnv(ctx); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	if err := h.instantiateWASI(ctx, compiled); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	return h, nil
}

// Close releases the runtime.
func (h *Host) Close(ctx context.Context) error { return h.rt.Close(ctx) }

// Advance moves the host clock.
func (h *Host) Advance(nanos int64) { h.now.Add(nanos) }

// SetEnv sets the environment of the VMs created afterwards (KEY=VALUE), as
// Envoy's vm_config.environment_variables does; e.g. GOGC=1 makes the Go
// runtime in the module collect garbage at once.
func (h *Host) SetEnv(kv ...string) { h.env = kv }

// SetProperty sets a property, e.g. SetProperty("10.0.0.1:5000", "source", "address").
func (h *Host) SetProperty(value string, path ...string) { h.props[strings.Join(path, "\x00")] = value }

// Logs returns what the filters logged.
func (h *Host) Logs() []string {
	h.logMu.Lock()
	defer h.logMu.Unlock()
	return append([]string(nil), h.logs...)
}

// SharedKeys is the number of shared data keys.
func (h *Host) SharedKeys() int {
	h.sharedMu.Lock()
	defer h.sharedMu.Unlock()
	return len(h.shared)
}

// CASMismatches counts set_shared_data calls refused for a stale CAS.
func (h *Host) CASMismatches() int64 { return h.casFails.Load() }

func (h *Host) log(msg string) {
	h.logMu.Lock()
	defer h.logMu.Unlock()
	if len(h.logs) < 10000 {
		h.logs = append(h.logs, msg)
	}
}

// VM is one module instance, as one Envoy worker thread holds. It is not
// safe for concurrent use; use one VM per goroutine.
type VM struct {
	h      *Host
	mod    api.Module
	nextID uint32
	active *stream
	calls  [numExports]api.Function
	tick   uint32
	config []byte
	stack  [4]uint64 // arguments and results of guest calls (CallWithStack)
	// failure is the host-side error of a host function (e.g. the guest's
	// allocator failed), reported by the call that was being served.
	failure error
	// crossings counts calls between host and guest in either direction:
	// exports the host calls, allocations included, and imports it serves.
	crossings int64
	// ctx is the context of the guest call being served (host functions
	// call back into the guest with it); parent and withVM cache the
	// context the VM is found by, so a request derives none.
	ctx, parent, withVM context.Context
	// stream and result are reused by every request (see Run);
	// sharedValue is where a shared data read is copied out of the lock.
	stream      stream
	result      Result
	sharedValue []byte
	// allocStack is the stack of the guest allocator calls host functions
	// make (vm.stack holds the arguments of the export being served).
	allocStack [1]uint64
}

// The callbacks a guest exports, indexed for VM.calls.
const (
	onContextCreate = iota
	onVMStart
	onConfigure
	onRequestHeaders
	onResponseHeaders
	onDone
	onLog
	onDelete
	onTick
	onMemoryAllocate
	numExports
)

// exportDefaults is what a callback the module does not export returns, as
// proxy-wasm-cpp-host has it: Continue (0) for the header callbacks, true
// for vm_start, configure and done.
var exportDefaults = [numExports]uint64{onVMStart: 1, onConfigure: 1, onDone: 1}

var exportNames = [numExports]string{"proxy_on_context_create", "proxy_on_vm_start", "proxy_on_configure", "proxy_on_request_headers",
	"proxy_on_response_headers", "proxy_on_done", "proxy_on_log", "proxy_on_delete", "proxy_on_tick", "proxy_on_memory_allocate"}

type stream struct {
	maps  [4][]abi.Header // by abi.MapType
	local *LocalResponse  // &localResponse once the filter answered
	// localResponse and localHeaders hold the filter's answer.
	localResponse LocalResponse
	localHeaders  []abi.Header
	// arena holds the header names and values the filter sets, as
	// Envoy's header maps store short strings inline rather than one
	// heap allocation each. Within a request bytes are only appended, and
	// a full arena is replaced, so strings into it stay valid until the
	// next request resets it.
	arena []byte
}

// arenaSize is the size of each arena block.
const arenaSize = 512

// keep copies v into the stream's arena, lower-cased when lower is set
// (header names).
func (s *stream) keep(v string, lower bool) string {
	if len(v) == 0 {
		return ""
	}
	if len(v) > cap(s.arena)-len(s.arena) {
		s.arena = make([]byte, 0, max(arenaSize, len(v)))
	}
	start := len(s.arena)
	s.arena = append(s.arena, v...)
	b := s.arena[start:]
	if lower {
		for i, c := range b {
			if 'A' <= c && c <= 'Z' {
				b[i] = c + 'a' - 'A'
			}
		}
	}
	return unsafe.String(&b[0], len(b))
}

// headerMap returns the active stream's map the guest named, nil without a
// stream or for an unknown map type.
func (vm *VM) headerMap(m uint32) *[]abi.Header {
	if vm.active == nil || int(m) >= len(vm.active.maps) {
		return nil
	}
	return &vm.active.maps[m]
}

// LocalResponse is a response sent by the filter.
type LocalResponse struct {
	Status  uint32
	Body    string
	Headers []abi.Header
}

// Result is the outcome of one request lifecycle.
type Result struct {
	// Local is set when the filter answered the request itself.
	Local *LocalResponse
	// Request and Response are the header maps after the filter ran.
	Request, Response []abi.Header
	// RequestAction and ResponseAction are what the filter returned.
	RequestAction, ResponseAction abi.Action
}

// Header returns the first value of name in hs.
func Header(hs []abi.Header, name string) (string, bool) {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

type vmKey struct{}

// NewVM instantiates the module and configures the plugin as Envoy does:
// _initialize, root context, vm_start, configure. A refused configuration
// is an error.
func (h *Host) NewVM(ctx context.Context, config []byte) (*VM, error) {
	vm := &VM{h: h, nextID: 1}
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize")
	ctx = vm.context(ctx)
	vm.ctx = ctx // for host functions _initialize may call
	mod, err := h.rt.InstantiateModule(ctx, h.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	vm.mod = mod
	// Like Envoy, require only the allocator: a callback the module does
	// not export is skipped, with its default result (exportDefaults).
	for i, name := range exportNames {
		vm.calls[i] = mod.ExportedFunction(name)
	}
	if vm.calls[onMemoryAllocate] == nil {
		return nil, errors.New("module does not export proxy_on_memory_allocate")
	}
	if mod.ExportedFunction("proxy_abi_version_0_2_1") == nil {
		return nil, errors.New("module does not declare proxy-wasm ABI 0.2.1")
	}
	if _, err := vm.call(ctx, onContextCreate, 1, 0); err != nil {
		return nil, err
	}
	if r, err := vm.call(ctx, onVMStart, 1, 0); err != nil || r[0] == 0 {
		return nil, fmt.Errorf("vm_start refused: %v", err)
	}
	vm.active = &stream{}
	vm.config = config
	r, err := vm.call(ctx, onConfigure, 1, uint64(len(config)))
	if err != nil {
		return nil, err
	}
	if r[0] == 0 {
		return vm, fmt.Errorf("%w: %s", ErrConfigRefused, strings.Join(h.Logs(), "; "))
	}
	return vm, nil
}

// ErrConfigRefused is NewVM's error when proxy_on_configure refused the
// configuration. The VM is returned with it: Envoy would not serve with
// it, but a test can play a host that does.
var ErrConfigRefused = errors.New("plugin refused its configuration")

func (vm *VM) call(ctx context.Context, export int, args ...uint64) ([]uint64, error) {
	return vm.callIn(vm.context(ctx), export, args...)
}

// context returns ctx carrying vm, which host functions find it by. It is
// derived once per parent context, not per call.
func (vm *VM) context(ctx context.Context) context.Context {
	if ctx != vm.parent {
		vm.parent, vm.withVM = ctx, context.WithValue(ctx, vmKey{}, vm)
	}
	return vm.withVM
}

// callIn calls a guest export with a context that already carries vm. The
// call reuses vm.stack, so the host adds no allocation of its own to what
// the benchmarks measure; the result is valid until the next call.
func (vm *VM) callIn(ctx context.Context, export int, args ...uint64) ([]uint64, error) {
	stack := vm.stack[:max(len(args), 1)]
	if vm.calls[export] == nil {
		stack[0] = exportDefaults[export]
		return stack[:1], nil
	}
	copy(stack, args)
	vm.ctx = ctx
	vm.crossings++
	err := vm.calls[export].CallWithStack(ctx, stack)
	if err == nil && vm.failure != nil {
		err, vm.failure = vm.failure, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", exportNames[export], err)
	}
	return stack[:1], nil
}

// Request runs one HTTP stream as Envoy does: context create, request
// headers, and — unless the filter answered locally — response headers,
// then done, log and delete. The Result is the caller's to keep.
func (vm *VM) Request(ctx context.Context, req, resp []abi.Header) (*Result, error) {
	r, err := vm.Run(ctx, req, resp)
	if err != nil {
		return nil, err
	}
	return r.clone(), nil
}

// Run is Request without the copy, for benchmarks: the VM reuses its
// stream's memory from one request to the next, as Envoy reuses a
// worker's, so the host allocates nothing and a benchmark measures the
// filter rather than the test host. The Result and everything in it are
// valid until the VM's next Request or Run.
func (vm *VM) Run(ctx context.Context, req, resp []abi.Header) (*Result, error) {
	vm.nextID++
	id := uint64(vm.nextID)
	s := &vm.stream
	s.reset(req, resp)
	vm.active = s
	defer func() { vm.active = nil }()
	ctx = vm.context(ctx)
	if _, err := vm.callIn(ctx, onContextCreate, id, 1); err != nil {
		return nil, err
	}
	res := &vm.result
	*res = Result{}
	r, err := vm.callIn(ctx, onRequestHeaders, id, uint64(len(req)), 1)
	if err != nil {
		return nil, err
	}
	res.RequestAction = abi.Action(r[0])
	if s.local == nil {
		r, err = vm.callIn(ctx, onResponseHeaders, id, uint64(len(resp)), 1)
		if err != nil {
			return nil, err
		}
		res.ResponseAction = abi.Action(r[0])
	}
	for _, export := range [...]int{onDone, onLog, onDelete} {
		if _, err := vm.callIn(ctx, export, id); err != nil {
			return nil, err
		}
	}
	res.Local, res.Request, res.Response = s.local, s.maps[abi.RequestHeaders], s.maps[abi.ResponseHeaders]
	return res, nil
}

// clone copies r out of the VM's reused memory.
func (r *Result) clone() *Result {
	c := &Result{Request: cloneHeaders(r.Request), Response: cloneHeaders(r.Response), RequestAction: r.RequestAction, ResponseAction: r.ResponseAction}
	if r.Local != nil {
		c.Local = &LocalResponse{Status: r.Local.Status, Body: strings.Clone(r.Local.Body), Headers: cloneHeaders(r.Local.Headers)}
	}
	return c
}

func cloneHeaders(hs []abi.Header) []abi.Header {
	if hs == nil {
		return nil
	}
	out := make([]abi.Header, len(hs))
	for i, h := range hs {
		out[i] = abi.Header{Name: strings.Clone(h.Name), Value: strings.Clone(h.Value)}
	}
	return out
}

// reset readies the stream for a request: copies of its header maps, with
// room for what filters add, and no answer.
func (s *stream) reset(req, resp []abi.Header) {
	for i := range s.maps {
		clear(s.maps[i])
		s.maps[i] = s.maps[i][:0]
	}
	s.maps[abi.RequestHeaders] = append(slices.Grow(s.maps[abi.RequestHeaders], len(req)+2), req...)
	s.maps[abi.ResponseHeaders] = append(slices.Grow(s.maps[abi.ResponseHeaders], len(resp)+8), resp...)
	s.local = nil
	s.arena = s.arena[:0]
}

// Crossings is how many calls have crossed between host and guest, in
// either direction, since the VM started: exports called (memory
// allocations included) and imports served. Each costs far more than the
// work of a typical host call (bench/RESULTS.md), so it is the budget a
// filter's per-request cost is made of.
func (vm *VM) Crossings() int64 { return vm.crossings }

// Tick delivers proxy_on_tick to the VM's root context.
func (vm *VM) Tick(ctx context.Context) error {
	_, err := vm.call(ctx, onTick, 1)
	return err
}

// TickPeriod is what the plugin asked for (ms), 0 if none.
func (vm *VM) TickPeriod() uint32 { return vm.tick }

// Close releases the VM's module instance.
func (vm *VM) Close(ctx context.Context) error { return vm.mod.Close(ctx) }

// Memory is the VM's linear memory size in bytes.
func (vm *VM) Memory() uint32 { return vm.mod.Memory().Size() }

// allocate asks the guest for size bytes (proxy_on_memory_allocate), as the
// host does to return data, and returns their address and a view of them.
func (vm *VM) allocate(size int) (uint32, []byte, error) {
	stack := vm.allocStack[:]
	stack[0] = uint64(size)
	vm.crossings++
	if err := vm.calls[onMemoryAllocate].CallWithStack(vm.ctx, stack); err != nil {
		return 0, nil, err
	}
	p := uint32(stack[0])
	buf, ok := vm.mod.Memory().Read(p, uint32(size))
	if !ok {
		return 0, nil, errors.New("allocated buffer out of range")
	}
	return p, buf[:size:size], nil
}

// returnBytes allocates data in the guest and writes its address and size
// to the two return pointers.
func (vm *VM) returnBytes(data []byte, retPtr, retSize uint32) uint32 {
	return vm.returnWith(len(data), retPtr, retSize, func(buf []byte) { copy(buf, data) })
}

// returnHeaders serializes hs straight into guest memory, as Envoy does.
func (vm *VM) returnHeaders(hs []abi.Header, retPtr, retSize uint32) uint32 {
	return vm.returnWith(abi.EncodedSize(hs), retPtr, retSize, func(buf []byte) { abi.AppendHeaders(buf[:0], hs) })
}

// returnWith allocates size bytes in the guest, lets fill write them and
// writes their address and size to the two return pointers.
func (vm *VM) returnWith(size int, retPtr, retSize uint32, fill func([]byte)) uint32 {
	p, buf, err := vm.allocate(size)
	if err != nil {
		vm.failure = err
		return 10 // InternalFailure
	}
	fill(buf)
	mem := vm.mod.Memory()
	if !mem.WriteUint32Le(retPtr, p) || !mem.WriteUint32Le(retSize, uint32(size)) {
		return 6 // InvalidMemoryAccess
	}
	return 0
}

// read copies n bytes of guest memory at p.
func (vm *VM) read(p, n uint32) (string, bool) {
	b, ok := vm.mod.Memory().Read(p, n)
	return string(b), ok
}

// view is n bytes of guest memory at p, not copied: valid only until the
// host function returns, for lookups and comparisons. Anything kept must
// be copied (read, or stream.keep).
func (vm *VM) view(p, n uint32) (string, bool) {
	b, ok := vm.mod.Memory().Read(p, n)
	if !ok || len(b) == 0 {
		return "", ok
	}
	return unsafe.String(&b[0], len(b)), true
}
