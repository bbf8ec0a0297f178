package wasmtest

import (
	"context"
	"fmt"
	"strings"
	"unsafe"

	"github.com/tetratelabs/wazero/api"

	"github.com/meshguard/meshguard/wasm/abi"
)

// Proxy-wasm status codes returned to the guest.
const (
	stOK          = 0
	stNotFound    = 1
	stBadArgument = 2
	stCasMismatch = 8
)

func vmOf(ctx context.Context) *VM { return ctx.Value(vmKey{}).(*VM) }

// instantiateEnv provides the proxy-wasm ABI imports (module "env").
func (h *Host) instantiateEnv(ctx context.Context) error {
	b := h.rt.NewHostModuleBuilder("env")
	// fn registers a host function without reflection: every proxy-wasm
	// import used here takes i32 arguments and returns an i32 status. The
	// function is given the calling VM, which counts the crossing.
	fn := func(name string, f any) {
		params, call := adapt(f)
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
			vm := vmOf(ctx)
			vm.crossings++
			stack[0] = uint64(call(vm, stack))
		}), params, []api.ValueType{api.ValueTypeI32}).Export(name)
	}

	fn("proxy_log", func(vm *VM, level, p, n uint32) uint32 {
		if msg, ok := vm.read(p, n); ok {
			h.log(fmt.Sprintf("[%d] %s", level, msg))
		}
		return stOK
	})
	fn("proxy_get_buffer_bytes", func(vm *VM, typ, start, max, retPtr, retSize uint32) uint32 {
		if typ != 7 { // plugin configuration is the only buffer served here
			return stNotFound
		}
		data := vm.config
		if int(start) > len(data) {
			return stBadArgument
		}
		data = data[start:]
		if int(max) < len(data) {
			data = data[:max]
		}
		return vm.returnBytes(data, retPtr, retSize)
	})
	fn("proxy_get_header_map_pairs", func(vm *VM, m, retPtr, retSize uint32) uint32 {
		if vm.active == nil {
			return stNotFound
		}
		hs := vm.headerMap(m)
		if hs == nil {
			return stBadArgument
		}
		return vm.returnHeaders(*hs, retPtr, retSize)
	})
	fn("proxy_get_header_map_value", func(vm *VM, m, kp, kn, retPtr, retSize uint32) uint32 {
		key, ok := vm.view(kp, kn)
		hs := vm.headerMap(m)
		if !ok || hs == nil {
			return stBadArgument
		}
		var vals []string
		for _, hd := range *hs {
			if len(hd.Name) == len(key) && strings.EqualFold(hd.Name, key) {
				vals = append(vals, hd.Value)
			}
		}
		if len(vals) == 0 {
			return stNotFound
		}
		return vm.returnBytes([]byte(strings.Join(vals, ",")), retPtr, retSize)
	})
	// mutate edits the header map m; key and val are views of guest memory
	// (see VM.view), which f copies with stream.keep if it stores them.
	mutate := func(vm *VM, m, kp, kn, vp, vn uint32, f func(s *stream, hs *[]abi.Header, key, val string)) uint32 {
		key, ok1 := vm.view(kp, kn)
		val, ok2 := vm.view(vp, vn)
		hs := vm.headerMap(m)
		if !ok1 || !ok2 || hs == nil {
			return stBadArgument
		}
		f(vm.active, hs, key, val)
		return stOK
	}
	remove := func(_ *stream, hs *[]abi.Header, key, _ string) {
		out := (*hs)[:0]
		for _, hd := range *hs {
			if len(hd.Name) != len(key) || !strings.EqualFold(hd.Name, key) {
				out = append(out, hd)
			}
		}
		clear((*hs)[len(out):])
		*hs = out
	}
	add := func(s *stream, hs *[]abi.Header, key, val string) {
		*hs = append(*hs, abi.Header{Name: s.keep(key, true), Value: s.keep(val, false)})
	}
	fn("proxy_add_header_map_value", func(vm *VM, m, kp, kn, vp, vn uint32) uint32 {
		return mutate(vm, m, kp, kn, vp, vn, add)
	})
	fn("proxy_replace_header_map_value", func(vm *VM, m, kp, kn, vp, vn uint32) uint32 {
		return mutate(vm, m, kp, kn, vp, vn, func(s *stream, hs *[]abi.Header, key, val string) {
			remove(s, hs, key, val)
			add(s, hs, key, val)
		})
	})
	fn("proxy_remove_header_map_value", func(vm *VM, m, kp, kn uint32) uint32 {
		return mutate(vm, m, kp, kn, 0, 0, remove)
	})
	fn("proxy_send_local_response", func(vm *VM, status, dp, dn, bp, bn, hp, hn uint32, grpc int32) uint32 {
		s := vm.active
		body, ok1 := vm.view(bp, bn)
		hb, ok2 := vm.view(hp, hn)
		if !ok1 || !ok2 || s == nil {
			return stBadArgument
		}
		// Copied into the stream's memory: the guest may reuse its buffers.
		r := &s.localResponse
		*r = LocalResponse{Status: status, Body: s.keep(body, false)}
		if hn > 0 {
			kept := s.keep(hb, false)
			hs, ok := abi.AppendDecoded(s.localHeaders[:0], unsafe.Slice(unsafe.StringData(kept), len(kept)))
			if !ok {
				return stBadArgument
			}
			s.localHeaders, r.Headers = hs, hs
		}
		s.local = r
		return stOK
	})
	fn("proxy_get_shared_data", func(vm *VM, kp, kn, retPtr, retSize, retCas uint32) uint32 {
		key, ok := vm.view(kp, kn)
		if !ok {
			return stBadArgument
		}
		// Copied out under the lock (into the VM's buffer: other VMs
		// write the entry concurrently), returned after it.
		h.sharedMu.Lock()
		e, found := h.shared[key]
		var cas uint32
		if found {
			vm.sharedValue, cas = append(vm.sharedValue[:0], e.value...), e.cas
		}
		h.sharedMu.Unlock()
		if !found {
			return stNotFound
		}
		if st := vm.returnBytes(vm.sharedValue, retPtr, retSize); st != stOK {
			return st
		}
		if !vm.mod.Memory().WriteUint32Le(retCas, cas) {
			return 6
		}
		return stOK
	})
	fn("proxy_set_shared_data", func(vm *VM, kp, kn, vp, vn, cas uint32) uint32 {
		key, ok1 := vm.view(kp, kn)
		val, ok2 := vm.view(vp, vn)
		if !ok1 || !ok2 {
			return stBadArgument
		}
		h.sharedMu.Lock()
		defer h.sharedMu.Unlock()
		e, found := h.shared[key]
		if found && cas != 0 && e.cas != cas {
			h.casFails.Add(1)
			return stCasMismatch
		}
		if !found {
			e = &sharedEntry{}
			h.shared[strings.Clone(key)] = e
		}
		h.casSeq++
		e.value, e.cas = append(e.value[:0], val...), h.casSeq
		return stOK
	})
	fn("proxy_get_property", func(vm *VM, pp, pn, retPtr, retSize uint32) uint32 {
		path, ok := vm.view(pp, pn)
		if !ok {
			return stBadArgument
		}
		v, found := h.props[path]
		if !found {
			return stNotFound
		}
		return vm.returnBytes(unsafe.Slice(unsafe.StringData(v), len(v)), retPtr, retSize) // copied, not kept
	})
	fn("proxy_get_current_time_nanoseconds", func(vm *VM, retPtr uint32) uint32 {
		if !vm.mod.Memory().WriteUint64Le(retPtr, uint64(h.now.Load())) {
			return 6
		}
		return stOK
	})
	fn("proxy_set_tick_period_milliseconds", func(vm *VM, ms uint32) uint32 {
		vm.tick = ms
		return stOK
	})
	_, err := b.Instantiate(ctx)
	return err
}

// adapt turns a typed host function into a stack-based call. Only the
// shapes used above are supported.
func adapt(f any) ([]api.ValueType, func(*VM, []uint64) uint32) {
	i32 := api.ValueTypeI32
	u := func(stack []uint64, i int) uint32 { return uint32(stack[i]) }
	switch g := f.(type) {
	case func(*VM, uint32) uint32:
		return []api.ValueType{i32}, func(vm *VM, s []uint64) uint32 { return g(vm, u(s, 0)) }
	case func(*VM, uint32, uint32, uint32) uint32:
		return []api.ValueType{i32, i32, i32}, func(vm *VM, s []uint64) uint32 { return g(vm, u(s, 0), u(s, 1), u(s, 2)) }
	case func(*VM, uint32, uint32, uint32, uint32) uint32:
		return []api.ValueType{i32, i32, i32, i32}, func(vm *VM, s []uint64) uint32 { return g(vm, u(s, 0), u(s, 1), u(s, 2), u(s, 3)) }
	case func(*VM, uint32, uint32, uint32, uint32, uint32) uint32:
		return []api.ValueType{i32, i32, i32, i32, i32}, func(vm *VM, s []uint64) uint32 {
			return g(vm, u(s, 0), u(s, 1), u(s, 2), u(s, 3), u(s, 4))
		}
	case func(*VM, uint32, uint32, uint32, uint32, uint32, uint32) uint32:
		return []api.ValueType{i32, i32, i32, i32, i32, i32}, func(vm *VM, s []uint64) uint32 {
			return g(vm, u(s, 0), u(s, 1), u(s, 2), u(s, 3), u(s, 4), u(s, 5))
		}
	case func(*VM, uint32, uint32, uint32, uint32, uint32, uint32, uint32, int32) uint32:
		return []api.ValueType{i32, i32, i32, i32, i32, i32, i32, i32}, func(vm *VM, s []uint64) uint32 {
			return g(vm, u(s, 0), u(s, 1), u(s, 2), u(s, 3), u(s, 4), u(s, 5), u(s, 6), int32(u(s, 7)))
		}
	}
	panic(fmt.Sprintf("wasmtest: unsupported host function type %T", f))
}
