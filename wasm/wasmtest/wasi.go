package wasmtest

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// instantiateWASI provides wasi_snapshot_preview1 as Envoy does: stdout and
// stderr writes (logged), random numbers, clocks, empty args, the
// environment SetEnv gives, no preopened directories, proc_exit and
// sched_yield. Everything else the module imports — notably poll_oneoff,
// which Go timers and, once they exist, every garbage collection need —
// answers ENOSYS (Envoy answers an error too: golang/go#78513).
func (h *Host) instantiateWASI(ctx context.Context, compiled wazero.CompiledModule) error {
	b := h.rt.NewHostModuleBuilder("wasi_snapshot_preview1")
	implemented := map[string]any{
		"fd_write": func(ctx context.Context, m api.Module, fd, iovs, iovsLen, nwritten uint32) uint32 {
			vmOf(ctx).crossings++
			mem := m.Memory()
			var total uint32
			var out []byte
			for i := range iovsLen {
				p, ok1 := mem.ReadUint32Le(iovs + 8*i)
				n, ok2 := mem.ReadUint32Le(iovs + 8*i + 4)
				if !ok1 || !ok2 {
					return 21 // EFAULT
				}
				b, ok := mem.Read(p, n)
				if !ok {
					return 21
				}
				out = append(out, b...)
				total += n
			}
			if fd == 1 || fd == 2 {
				h.log(fmt.Sprintf("[fd%d] %s", fd, out))
			}
			mem.WriteUint32Le(nwritten, total)
			return 0
		},
		"clock_time_get": func(ctx context.Context, m api.Module, id uint32, precision uint64, ret uint32) uint32 {
			vmOf(ctx).crossings++
			if !m.Memory().WriteUint64Le(ret, uint64(h.now.Load())) {
				return 21
			}
			return 0
		},
		"args_sizes_get": func(ctx context.Context, m api.Module, argc, size uint32) uint32 {
			vmOf(ctx).crossings++
			m.Memory().WriteUint32Le(argc, 0)
			m.Memory().WriteUint32Le(size, 0)
			return 0
		},
		"args_get": func(ctx context.Context, m api.Module, argv, buf uint32) uint32 {
			vmOf(ctx).crossings++
			return 0
		},
		// The environment is what SetEnv gave, as Envoy's
		// vm_config.environment_variables gives it: KEY=VALUE strings.
		"environ_sizes_get": func(ctx context.Context, m api.Module, n, size uint32) uint32 {
			vmOf(ctx).crossings++
			total := 0
			for _, kv := range h.env {
				total += len(kv) + 1
			}
			m.Memory().WriteUint32Le(n, uint32(len(h.env)))
			m.Memory().WriteUint32Le(size, uint32(total))
			return 0
		},
		"environ_get": func(ctx context.Context, m api.Module, env, buf uint32) uint32 {
			vmOf(ctx).crossings++
			for i, kv := range h.env {
				if !m.Memory().WriteUint32Le(env+4*uint32(i), buf) || !m.Memory().WriteString(buf, kv) || !m.Memory().WriteByte(buf+uint32(len(kv)), 0) {
					return 21 // EFAULT
				}
				buf += uint32(len(kv)) + 1
			}
			return 0
		},
		"proc_exit": func(ctx context.Context, m api.Module, code uint32) {
			vmOf(ctx).crossings++
			panic(sys.NewExitError(code))
		},
		"sched_yield": func(ctx context.Context, m api.Module) uint32 {
			vmOf(ctx).crossings++
			return 0
		},
		// No preopened directories: EBADF ends the runtime's preopen scan
		// (ENOSYS would make Go's syscall package panic at init), as in Envoy.
		"fd_prestat_get": func(ctx context.Context, m api.Module, fd, buf uint32) uint32 {
			vmOf(ctx).crossings++
			return 8
		},
		"fd_prestat_dir_name": func(ctx context.Context, m api.Module, fd, path, n uint32) uint32 {
			vmOf(ctx).crossings++
			return 8
		},
	}
	for name, f := range implemented {
		b.NewFunctionBuilder().WithFunc(f).Export(name)
	}
	// random_get is on a request's path (new request ids), so it is called
	// without reflection, which would allocate in the host per call.
	i32 := api.ValueTypeI32
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
		vmOf(ctx).crossings++
		buf, ok := m.Memory().Read(uint32(stack[0]), uint32(stack[1])) // a view: filled in place
		if !ok {
			stack[0] = 21 // EFAULT
			return
		}
		_, _ = rand.Read(buf)
		stack[0] = 0
	}), []api.ValueType{i32, i32}, []api.ValueType{i32}).Export("random_get")
	for _, imp := range compiled.ImportedFunctions() {
		mod, name, _ := imp.Import()
		if mod != "wasi_snapshot_preview1" {
			continue
		}
		if _, ok := implemented[name]; ok || name == "random_get" {
			continue
		}
		results := imp.ResultTypes()
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
			vmOf(ctx).crossings++
			if len(results) > 0 {
				stack[0] = errnoNoSys
			}
		}), imp.ParamTypes(), results).Export(name)
	}
	_, err := b.Instantiate(ctx)
	return err
}
