package wasmtest

import (
	"context"
	"fmt"
	"strings"

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
	// import used here takes i32 arguments and returns an i32 status.
	fn := func(name string, f any) {
		params, call := adapt(f)
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
			stack[0] = uint64(call(ctx, stack))
		}), params, []api.ValueType{api.ValueTypeI32}).Export(name)
	}

	fn("proxy_log", func(ctx context.Context, level, p, n uint32) uint32 {
		if msg, ok := vmOf(ctx).read(p, n); ok {
			h.log(fmt.Sprintf("[%d] %s", level, msg))
		}
		return stOK
	})
	fn("proxy_get_buffer_bytes", func(ctx context.Context, typ, start, max, retPtr, retSize uint32) uint32 {
		vm := vmOf(ctx)
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
		return vm.returnBytes(ctx, data, retPtr, retSize)
	})
	fn("proxy_get_header_map_pairs", func(ctx context.Context, m, retPtr, retSize uint32) uint32 {
		vm := vmOf(ctx)
		if vm.active == nil {
			return stNotFound
		}
		hs := vm.headerMap(m)
		if hs == nil {
			return stBadArgument
		}
		return vm.returnHeaders(ctx, *hs, retPtr, retSize)
	})
	fn("proxy_get_header_map_value", func(ctx context.Context, m, kp, kn, retPtr, retSize uint32) uint32 {
		vm := vmOf(ctx)
		key, ok := vm.view(kp, kn)
		hs := vm.headerMap(m)
		if !ok || hs == nil {
			return stBadArgument
		}
		var vals []string
		for _, hd := range *hs {
			if strings.EqualFold(hd.Name, key) {
				vals = append(vals, hd.Value)
			}
		}
		if len(vals) == 0 {
			return stNotFound
		}
		return vm.returnBytes(ctx, []byte(strings.Join(vals, ",")), retPtr, retSize)
	})
	// mutate edits the header map m; key and val are views of guest memory
	// (see VM.view), which f copies with stream.keep if it stores them.
	mutate := func(ctx context.Context, m, kp, kn, vp, vn uint32, f func(s *stream, hs *[]abi.Header, key, val string)) uint32 {
		vm := vmOf(ctx)
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
			if !strings.EqualFold(hd.Name, key) {
				out = append(out, hd)
			}
		}
		clear((*hs)[len(out):])
		*hs = out
	}
	add := func(s *stream, hs *[]abi.Header, key, val string) {
		*hs = append(*hs, abi.Header{Name: s.keep(key, true), Value: s.keep(val, false)})
	}
	fn("proxy_add_header_map_value", func(ctx context.Context, m, kp, kn, vp, vn uint32) uint32 {
		return mutate(ctx, m, kp, kn, vp, vn, add)
	})
	fn("proxy_replace_header_map_value", func(ctx context.Context, m, kp, kn, vp, vn uint32) uint32 {
		return mutate(ctx, m, kp, kn, vp, vn, func(s *stream, hs *[]abi.Header, key, val string) {
			remove(s, hs, key, val)
			add(s, hs, key, val)
		})
	})
	fn("proxy_remove_header_map_value", func(ctx context.Context, m, kp, kn uint32) uint32 {
		return mutate(ctx, m, kp, kn, 0, 0, remove)
	})
	fn("proxy_send_local_response", func(ctx context.Context, status, dp, dn, bp, bn, hp, hn uint32, grpc int32) uint32 {
		vm := vmOf(ctx)
		body, ok1 := vm.read(bp, bn)
		hb, ok2 := vm.read(hp, hn)
		if !ok1 || !ok2 || vm.active == nil {
			return stBadArgument
		}
		var hs []abi.Header
		if hn > 0 {
			if hs = abi.DecodeHeaders([]byte(hb)); hs == nil {
				return stBadArgument
			}
		}
		vm.active.local = &LocalResponse{Status: status, Body: body, Headers: hs}
		return stOK
	})
	fn("proxy_get_shared_data", func(ctx context.Context, kp, kn, retPtr, retSize, retCas uint32) uint32 {
		vm := vmOf(ctx)
		key, ok := vm.view(kp, kn)
		if !ok {
			return stBadArgument
		}
		h.sharedMu.Lock()
		e, found := h.shared[key]
		var value []byte
		var cas uint32
		if found {
			value, cas = e.value, e.cas
		}
		h.sharedMu.Unlock()
		if !found {
			return stNotFound
		}
		if st := vm.returnBytes(ctx, value, retPtr, retSize); st != stOK {
			return st
		}
		if !vm.mod.Memory().WriteUint32Le(retCas, cas) {
			return 6
		}
		return stOK
	})
	fn("proxy_set_shared_data", func(ctx context.Context, kp, kn, vp, vn, cas uint32) uint32 {
		vm := vmOf(ctx)
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
		// A new value each time: readers copy a value out after unlocking.
		h.casSeq++
		e.value, e.cas = []byte(val), h.casSeq
		return stOK
	})
	fn("proxy_get_property", func(ctx context.Context, pp, pn, retPtr, retSize uint32) uint32 {
		vm := vmOf(ctx)
		path, ok := vm.view(pp, pn)
		if !ok {
			return stBadArgument
		}
		v, found := h.props[path]
		if !found {
			return stNotFound
		}
		return vm.returnBytes(ctx, []byte(v), retPtr, retSize)
	})
	fn("proxy_get_current_time_nanoseconds", func(ctx context.Context, retPtr uint32) uint32 {
		if !vmOf(ctx).mod.Memory().WriteUint64Le(retPtr, uint64(h.now.Load())) {
			return 6
		}
		return stOK
	})
	fn("proxy_set_tick_period_milliseconds", func(ctx context.Context, ms uint32) uint32 {
		vmOf(ctx).tick = ms
		return stOK
	})
	_, err := b.Instantiate(ctx)
	return err
}

// adapt turns a typed host function into a stack-based call. Only the
// shapes used above are supported.
func adapt(f any) ([]api.ValueType, func(context.Context, []uint64) uint32) {
	i32 := api.ValueTypeI32
	u := func(stack []uint64, i int) uint32 { return uint32(stack[i]) }
	switch g := f.(type) {
	case func(context.Context, uint32) uint32:
		return []api.ValueType{i32}, func(c context.Context, s []uint64) uint32 { return g(c, u(s, 0)) }
	case func(context.Context, uint32, uint32, uint32) uint32:
		return []api.ValueType{i32, i32, i32}, func(c context.Context, s []uint64) uint32 { return g(c, u(s, 0), u(s, 1), u(s, 2)) }
	case func(context.Context, uint32, uint32, uint32, uint32) uint32:
		return []api.ValueType{i32, i32, i32, i32}, func(c context.Context, s []uint64) uint32 { return g(c, u(s, 0), u(s, 1), u(s, 2), u(s, 3)) }
	case func(context.Context, uint32, uint32, uint32, uint32, uint32) uint32:
		return []api.ValueType{i32, i32, i32, i32, i32}, func(c context.Context, s []uint64) uint32 {
			return g(c, u(s, 0), u(s, 1), u(s, 2), u(s, 3), u(s, 4))
		}
	case func(context.Context, uint32, uint32, uint32, uint32, uint32, uint32) uint32:
		return []api.ValueType{i32, i32, i32, i32, i32, i32}, func(c context.Context, s []uint64) uint32 {
			return g(c, u(s, 0), u(s, 1), u(s, 2), u(s, 3), u(s, 4), u(s, 5))
		}
	case func(context.Context, uint32, uint32, uint32, uint32, uint32, uint32, uint32, int32) uint32:
		return []api.ValueType{i32, i32, i32, i32, i32, i32, i32, i32}, func(c context.Context, s []uint64) uint32 {
			return g(c, u(s, 0), u(s, 1), u(s, 2), u(s, 3), u(s, 4), u(s, 5), u(s, 6), int32(u(s, 7)))
		}
	}
	panic(fmt.Sprintf("wasmtest: unsupported host function type %T", f))
}
