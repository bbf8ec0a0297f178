package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Condition types every meshguard object reports, as Gateway API does.
const (
	// ConditionAccepted is True when the object is valid and part of the
	// mesh the control plane serves; False with the field and the error
	// otherwise (the object's last accepted version keeps serving).
	ConditionAccepted = "Accepted"
	// ConditionProgrammed is True when every proxy the object configures
	// has acknowledged the mesh version that carries it; False with a
	// proxy's rejection (NACK) or the proxies still to acknowledge.
	ConditionProgrammed = "Programmed"
)

// Condition reasons.
const (
	ReasonAccepted   = "Accepted"
	ReasonInvalid    = "Invalid"    // the object fails validation
	ReasonConflicted = "Conflicted" // an older object holds the same name
	ReasonNoMesh     = "NoMesh"     // no Mesh object to join yet
	ReasonProgrammed = "Programmed"
	ReasonPending    = "Pending"  // proxies have not all acknowledged yet
	ReasonRejected   = "Rejected" // a proxy rejected the configuration (NACK)
	ReasonNoProxies  = "NoProxies"
)

// Status is what every meshguard object reports.
type Status struct {
	// Conditions: Accepted and Programmed.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
