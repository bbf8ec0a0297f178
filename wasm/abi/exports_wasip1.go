//go:build wasip1

package abi

import (
	"bytes"
	"fmt"
	"unsafe"
)

// Imports from the host (module "env"), proxy-wasm ABI v0.2.1.

//go:wasmimport env proxy_log
func proxyLog(level uint32, msg unsafe.Pointer, size uint32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(bufType, start, maxSize uint32, retPtr, retSize unsafe.Pointer) uint32

//go:wasmimport env proxy_get_header_map_pairs
func proxyGetHeaderMapPairs(mapType uint32, retPtr, retSize unsafe.Pointer) uint32

//go:wasmimport env proxy_get_header_map_value
func proxyGetHeaderMapValue(mapType uint32, key unsafe.Pointer, keySize uint32, retPtr, retSize unsafe.Pointer) uint32

//go:wasmimport env proxy_add_header_map_value
func proxyAddHeaderMapValue(mapType uint32, key unsafe.Pointer, keySize uint32, value unsafe.Pointer, valueSize uint32) uint32

//go:wasmimport env proxy_replace_header_map_value
func proxyReplaceHeaderMapValue(mapType uint32, key unsafe.Pointer, keySize uint32, value unsafe.Pointer, valueSize uint32) uint32

//go:wasmimport env proxy_remove_header_map_value
func proxyRemoveHeaderMapValue(mapType uint32, key unsafe.Pointer, keySize uint32) uint32

//go:wasmimport env proxy_send_local_response
func proxySendLocalResponse(status uint32, details unsafe.Pointer, detailsSize uint32, body unsafe.Pointer, bodySize uint32,
	headers unsafe.Pointer, headersSize uint32, grpcStatus int32) uint32

//go:wasmimport env proxy_get_shared_data
func proxyGetSharedData(key unsafe.Pointer, keySize uint32, retPtr, retSize, retCas unsafe.Pointer) uint32

//go:wasmimport env proxy_set_shared_data
func proxySetSharedData(key unsafe.Pointer, keySize uint32, value unsafe.Pointer, valueSize uint32, cas uint32) uint32

//go:wasmimport env proxy_get_property
func proxyGetProperty(path unsafe.Pointer, pathSize uint32, retPtr, retSize unsafe.Pointer) uint32

//go:wasmimport env proxy_get_current_time_nanoseconds
func proxyGetCurrentTimeNanoseconds(ret unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 random_get
func wasiRandomGet(buf unsafe.Pointer, n uint32) uint32

//go:wasmimport env proxy_set_tick_period_milliseconds
func proxySetTickPeriodMilliseconds(ms uint32) uint32

// Buffer types (proxy_get_buffer_bytes).
const (
	bufferVMConfiguration     = 6
	bufferPluginConfiguration = 7
)

var (
	dispatcher = NewDispatcher(nil)

	// What the host returns during one callback — buffers it asks us to
	// allocate (proxy_on_memory_allocate) and the header lists decoded from
	// them — lives in arenas reset when the next callback starts (Host's
	// lifetime rule), so a request costs no Go allocation for them. A
	// buffer that does not fit grows the arena (up to maxArena) instead of
	// being allocated on its own: the larger request then costs one
	// allocation for the VM's life, not one per request, since garbage is
	// fatal here (a collection crashes the VM under Envoy: golang/go#78513,
	// docs/filters.md). Beyond maxArena, buffers are allocated and kept in
	// allocated until taken (Go's GC does not move objects, so the address
	// the host was given stays valid).
	arena     = make([]byte, 64<<10)
	arenaUsed uint32
	allocated = map[uint32][]byte{}
	headerBuf = make([]Header, 0, 128)

	// Where the host writes a call's results. Locals would escape through
	// unsafe.Pointer and cost an allocation per call; the module is single
	// threaded and nothing nests between a call and the read of its results.
	retPtr, retSize, retCas uint32
	retTime                 uint64
)

// SetPlugin registers the filter; call it from the command's init().
func SetPlugin(p Plugin) { dispatcher = NewDispatcher(p) }

type wasmHost struct{}

var host Host = wasmHost{}

func ptr(s string) unsafe.Pointer { return unsafe.Pointer(unsafe.StringData(s)) }

func bptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}

// beginCallback starts a callback that runs filter code: what the host
// returned during the previous one is no longer referenced.
func beginCallback() {
	arenaUsed = 0
	headerBuf = headerBuf[:0]
}

// take returns a buffer the host allocated through us and filled.
func take(p, size uint32) []byte {
	base := uint32(uintptr(unsafe.Pointer(unsafe.SliceData(arena))))
	if p >= base && p+size <= base+arenaUsed {
		return arena[p-base : p-base+size : p-base+size]
	}
	b, ok := allocated[p]
	delete(allocated, p)
	if !ok || int(size) > len(b) {
		return nil
	}
	return b[:size:size]
}

func (wasmHost) Headers(m MapType) []Header {
	if proxyGetHeaderMapPairs(uint32(m), unsafe.Pointer(&retPtr), unsafe.Pointer(&retSize)) != 0 {
		return nil
	}
	start := len(headerBuf)
	hs, ok := appendHeaders(headerBuf, take(retPtr, retSize))
	if !ok {
		return nil
	}
	headerBuf = hs
	return hs[start:len(hs):len(hs)]
}

func (wasmHost) Header(m MapType, name string) (string, bool) {
	if proxyGetHeaderMapValue(uint32(m), ptr(name), uint32(len(name)), unsafe.Pointer(&retPtr), unsafe.Pointer(&retSize)) != 0 {
		return "", false
	}
	return String(take(retPtr, retSize)), true
}

func (wasmHost) SetHeader(m MapType, name, value string) {
	proxyReplaceHeaderMapValue(uint32(m), ptr(name), uint32(len(name)), ptr(value), uint32(len(value)))
}

func (wasmHost) AddHeader(m MapType, name, value string) {
	proxyAddHeaderMapValue(uint32(m), ptr(name), uint32(len(name)), ptr(value), uint32(len(value)))
}

func (wasmHost) RemoveHeader(m MapType, name string) {
	proxyRemoveHeaderMapValue(uint32(m), ptr(name), uint32(len(name)))
}

// localHeaders is where a local response's headers are encoded: the host
// copies them during the call, and refusals are the path a flood takes.
var localHeaders []byte

func (wasmHost) SendLocalResponse(status uint32, body string, headers []Header) {
	localHeaders = AppendHeaders(localHeaders[:0], headers)
	details := "meshguard_wasm"
	proxySendLocalResponse(status, ptr(details), uint32(len(details)), ptr(body), uint32(len(body)), bptr(localHeaders), uint32(len(localHeaders)), -1)
}

func (wasmHost) SharedData(key string) ([]byte, uint32, bool) {
	if proxyGetSharedData(ptr(key), uint32(len(key)), unsafe.Pointer(&retPtr), unsafe.Pointer(&retSize), unsafe.Pointer(&retCas)) != 0 {
		return nil, 0, false
	}
	return take(retPtr, retSize), retCas, true
}

func (wasmHost) SetSharedData(key string, value []byte, cas uint32) error {
	switch s := Status(proxySetSharedData(ptr(key), uint32(len(key)), bptr(value), uint32(len(value)), cas)); s {
	case StatusOK:
		return nil
	case StatusCasMismatch:
		return ErrCASMismatch
	default:
		return fmt.Errorf("set shared data: status %d", s)
	}
}

// propertyPath is the scratch buffer property paths are joined in.
var propertyPath []byte

func (wasmHost) Property(path ...string) ([]byte, bool) {
	propertyPath = propertyPath[:0]
	for i, seg := range path {
		if i > 0 {
			propertyPath = append(propertyPath, 0)
		}
		propertyPath = append(propertyPath, seg...)
	}
	if proxyGetProperty(bptr(propertyPath), uint32(len(propertyPath)), unsafe.Pointer(&retPtr), unsafe.Pointer(&retSize)) != 0 {
		return nil, false
	}
	return take(retPtr, retSize), true
}

func (wasmHost) NowNanos() int64 {
	proxyGetCurrentTimeNanoseconds(unsafe.Pointer(&retTime))
	return int64(retTime) // wasm is little-endian, as the ABI
}

func (wasmHost) Random(b []byte) {
	if len(b) > 0 {
		wasiRandomGet(unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b)))
	}
}

func (wasmHost) Log(level LogLevel, msg string) {
	proxyLog(uint32(level), ptr(msg), uint32(len(msg)))
}

func (wasmHost) SetTickPeriod(ms uint32) { proxySetTickPeriodMilliseconds(ms) }

// Exports called by the host.

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

// maxArena bounds the arena's growth: Envoy's largest header maps
// (max_request_headers_kb is at most 8 MiB) fit.
const maxArena = 16 << 20

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) unsafe.Pointer {
	n := max((size+7)&^7, 8)
	if arenaUsed+n > uint32(len(arena)) && n <= maxArena {
		// Buffers already handed out in this callback stay valid: the
		// slices taken from them keep the old arena alive.
		arena = make([]byte, min(max(2*len(arena), int(n)), maxArena))
		arenaUsed = 0
	}
	if arenaUsed+n <= uint32(len(arena)) {
		p := unsafe.Pointer(&arena[arenaUsed])
		arenaUsed += n
		return p
	}
	b := make([]byte, max(size, 1))
	p := unsafe.Pointer(unsafe.SliceData(b))
	allocated[uint32(uintptr(p))] = b
	return p
}

//go:wasmexport proxy_on_context_create
func onContextCreate(id, parent uint32) { dispatcher.ContextCreate(id, parent) }

//go:wasmexport proxy_on_vm_start
func onVMStart(root, size uint32) uint32 { return 1 }

//go:wasmexport proxy_on_configure
func onConfigure(root, size uint32) uint32 {
	beginCallback()
	var cfg []byte
	if size > 0 {
		if proxyGetBufferBytes(bufferPluginConfiguration, 0, size, unsafe.Pointer(&retPtr), unsafe.Pointer(&retSize)) != 0 {
			host.Log(LogCritical, "cannot read plugin configuration")
			return 0
		}
		cfg = bytes.Clone(take(retPtr, retSize)) // the filter may keep it
	}
	if dispatcher.Configure(host, cfg) {
		return 1
	}
	return 0
}

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(id, numHeaders, eos uint32) uint32 {
	beginCallback()
	return uint32(dispatcher.RequestHeaders(host, id, eos != 0))
}

//go:wasmexport proxy_on_response_headers
func onResponseHeaders(id, numHeaders, eos uint32) uint32 {
	beginCallback()
	return uint32(dispatcher.ResponseHeaders(host, id, eos != 0))
}

// The module exports no proxy_on_{request,response}_{body,trailers},
// proxy_on_log or proxy_on_done: no filter uses them, and a host skips a
// callback the module does not export (proxy-wasm-cpp-host treats a
// missing one as Continue, or as done), which saves a VM crossing per
// body chunk and two per request.

//go:wasmexport proxy_on_delete
func onDelete(id uint32) { dispatcher.Delete(id) }

//go:wasmexport proxy_on_tick
func onTick(root uint32) {
	beginCallback()
	dispatcher.Tick(host)
}
