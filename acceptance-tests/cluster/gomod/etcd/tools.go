//go:build tools

// Package tools pins the etcd server command (the main package at the root of
// go.etcd.io/etcd/server/v3) that build.sh builds.
package tools

import _ "go.etcd.io/etcd/server/v3"
