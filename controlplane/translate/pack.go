package translate

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshguard/meshguard/internal/pbvalidate"
)

// builder accumulates the first error, so translation code reads straight.
type builder struct {
	err error
}

// pack validates m (deeply) and wraps it in an Any.
func (b *builder) pack(m proto.Message) *anypb.Any {
	if b.err != nil {
		return nil
	}
	if err := pbvalidate.Deep(m); err != nil {
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
