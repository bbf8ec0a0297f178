// Package translate turns the mesh model into the Envoy resources one
// workload's sidecar needs. It is a pure function: values in, resources out,
// no files, clocks or network. Every typed config is validated before it is
// packed into an Any (ValidateAll does not look inside one), and the result's
// cross references (RDS names, clusters, EDS, SDS secrets) are checked before
// it is returned.
//
// Resource names:
//
//	inbound                     listener: mTLS from allowed callers, ext_authz, the app
//	ingress                     listener: plaintext entry for edge services (ingressPort)
//	inbound|<service>           route configuration of the service's routes
//	inbound|local               cluster: the local application
//	outbound|<service>          listener, route configuration, cluster and endpoints per dependency
//	meshguard-authz             cluster: the authorizer
//	default, ROOTCA             SDS secrets: own SVID and trust bundle (SPIRE agent naming)
package translate
