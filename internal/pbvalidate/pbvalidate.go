// Package pbvalidate validates Envoy protobufs all the way down.
//
// go-control-plane's generated ValidateAll() stops at google.protobuf.Any: a
// Listener holding an invalid HttpConnectionManager passes. Deep unpacks every
// Any it meets (the type must be linked into the binary) and validates the
// message inside, recursively, reporting the path to each violation.
package pbvalidate

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

type validatorAll interface{ ValidateAll() error }

// Deep validates m and every message packed in an Any beneath it.
func Deep(m proto.Message) error {
	var errs []error
	walk(m.ProtoReflect(), string(m.ProtoReflect().Descriptor().Name()), &errs)
	return errors.Join(errs...)
}

func walk(m protoreflect.Message, path string, errs *[]error) {
	if v, ok := m.Interface().(validatorAll); ok {
		if err := v.ValidateAll(); err != nil {
			*errs = append(*errs, fmt.Errorf("%s: %w", path, err))
		}
	}
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			*errs = append(*errs, fmt.Errorf("%s: unpack %s: %w", path, a.GetTypeUrl(), err))
			return
		}
		walk(inner.ProtoReflect(), path+"<"+string(inner.ProtoReflect().Descriptor().Name())+">", errs)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil {
			return true
		}
		name := path + "." + string(fd.Name())
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walk(l.Get(i).Message(), fmt.Sprintf("%s[%d]", name, i), errs)
			}
		case fd.IsMap():
			if fd.MapValue().Message() == nil {
				return true
			}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				walk(mv.Message(), fmt.Sprintf("%s[%v]", name, k.Interface()), errs)
				return true
			})
		default:
			walk(v.Message(), name, errs)
		}
		return true
	})
}
