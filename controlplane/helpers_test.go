package controlplane

import rpcstatus "google.golang.org/genproto/googleapis/rpc/status"

type statusProto struct{ Message string }

func (s statusProto) proto() *rpcstatus.Status { return &rpcstatus.Status{Code: 3, Message: s.Message} }
