// Package demoapp holds the quickstart's demo workloads: a frontend that
// serves users over HTTP and calls orders over proxyless gRPC (xDS, mTLS), an
// orders gRPC server that asks meshguard's authorizer about every call, and a
// payments HTTP app for behind an Envoy sidecar. They exist to show traffic
// crossing the mesh; they are not part of meshguard.
package demoapp

import (
	"encoding/json"

	"google.golang.org/grpc/encoding"
)

// The demo's gRPC messages are JSON (a registered codec), so the demo needs
// no generated code.
type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)   { return json.Marshal(v) }
func (jsonCodec) Unmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
func (jsonCodec) Name() string                    { return "json" }

func init() { encoding.RegisterCodec(jsonCodec{}) }

// OrderRequest asks orders for something.
type OrderRequest struct {
	ID   string `json:"id,omitempty"`
	Item string `json:"item,omitempty"`
}

// OrderReply is what orders answers, including who it saw calling.
type OrderReply struct {
	Result     string `json:"result"`
	Server     string `json:"server"`      // orders' own SPIFFE ID
	Caller     string `json:"caller"`      // the mTLS peer's SPIFFE ID, as orders verified it
	Principal  string `json:"principal"`   // the Cedar principal the authorizer decided on
	DecisionID string `json:"decision_id"` // the authorizer's decision id
}

// gRPC method names of the demo Orders service.
const (
	ordersService = "meshguard.demo.Orders"
	methodList    = "/" + ordersService + "/List"
	methodGet     = "/" + ordersService + "/Get"
	methodCreate  = "/" + ordersService + "/Create"
)
