package translate

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// builder accumulates the first error, so translation code reads straight.
type builder struct {
	err error
}

// pack validates m and wraps it in an Any. Every Any the translator makes
// comes from pack, so any Any inside m was validated when it was packed, and
// ValidateAll on m (which stops at Anys) completes the check.
func (b *builder) pack(m proto.Message) *anypb.Any {
	if b.err != nil {
		return nil
	}
	if err := validate(m); err != nil {
		b.err = fmt.Errorf("invalid %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
		return nil
	}
	// Deterministic, so equal config always packs to equal bytes and the
	// content versions of the xDS cache stay stable across translations.
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		b.err = err
	}
	return a
}

func (b *builder) fail(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf(format, args...)
	}
}

type validatorAll interface{ ValidateAll() error }

func validate(m proto.Message) error {
	if v, ok := m.(validatorAll); ok {
		return v.ValidateAll()
	}
	return nil
}
