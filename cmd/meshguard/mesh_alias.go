package main

import "github.com/meshguard/meshguard/controlplane/model"

type modelMesh = model.Mesh
