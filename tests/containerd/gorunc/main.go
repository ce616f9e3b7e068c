// Command gorunc drives a runc-compatible binary through containerd's go-runc client library
// (Debian's golang-github-containerd-go-runc-dev), the way containerd's shim does, and prints
// one JSON object per step on stdout for the Python test to check.
//
// Steps: Version; Create (pipes for stdio, a pid file); State and List of the created
// container; Start; the container's first stdout line; State; Ps; Kill(SIGTERM); the init
// process's exit status (we are its subreaper, as the shim is); State; Delete; List; State of
// the deleted container (an error).
//
// Build offline in GOPATH mode: GO111MODULE=off GOPATH=/usr/share/gocode:$TMP go build.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	runc "github.com/containerd/go-runc"
	"golang.org/x/sys/unix"
)

type step map[string]interface{}

func emit(s step) {
	data, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(data))
}

// fail reports an unexpected error of a step and exits non-zero.
func fail(name string, err error) {
	emit(step{"step": name, "error": err.Error()})
	os.Exit(1)
}

func containerSummary(c *runc.Container) step {
	return step{"id": c.ID, "pid": c.Pid, "status": c.Status, "bundle": c.Bundle}
}

func listSummary(containers []*runc.Container) []step {
	out := []step{}
	for _, c := range containers {
		out = append(out, containerSummary(c))
	}
	return out
}

func main() {
	binary := flag.String("runtime", "runc", "runc-compatible binary")
	root := flag.String("root", "", "the runtime's state root (--root)")
	bundle := flag.String("bundle", "", "OCI bundle whose process prints a line, then waits")
	id := flag.String("id", "gorunc", "container id")
	timeout := flag.Duration("timeout", 60*time.Second, "time allowed for everything")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	r := &runc.Runc{
		Command:   *binary,
		Root:      *root,
		Log:       filepath.Join(*bundle, "log.json"),
		LogFormat: runc.JSON,
	}

	version, err := r.Version(ctx)
	if err != nil {
		fail("version", err)
	}
	emit(step{"step": "version", "runc": version.Runc, "commit": version.Commit, "spec": version.Spec})

	// The init process is forked by `create`, which then exits: as its subreaper we inherit
	// it and learn its exit status, as containerd's shim does.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fail("subreaper", err)
	}
	pipes, err := runc.NewPipeIO(0, 0)
	if err != nil {
		fail("pipes", err)
	}
	defer pipes.Close()
	pidFile := filepath.Join(*bundle, "init.pid")
	if err := r.Create(ctx, *id, *bundle, &runc.CreateOpts{IO: pipes, PidFile: pidFile}); err != nil {
		fail("create", err)
	}
	// The shim reads the pid file with this very function (no trimming: a newline fails).
	pid, err := runc.ReadPidFile(pidFile)
	if err != nil {
		fail("create", err)
	}
	emit(step{"step": "create", "pid": pid})

	state, err := r.State(ctx, *id)
	if err != nil {
		fail("state-created", err)
	}
	emit(step{"step": "state-created", "container": containerSummary(state)})
	listed, err := r.List(ctx)
	if err != nil {
		fail("list-created", err)
	}
	emit(step{"step": "list-created", "containers": listSummary(listed)})

	if err := r.Start(ctx, *id); err != nil {
		fail("start", err)
	}
	emit(step{"step": "start"})

	stdout := pipes.Stdout()
	if deadline, ok := stdout.(interface{ SetReadDeadline(time.Time) error }); ok {
		if err := deadline.SetReadDeadline(time.Now().Add(*timeout)); err != nil {
			fail("stdout", err)
		}
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		fail("stdout", err)
	}
	emit(step{"step": "stdout", "line": line})

	state, err = r.State(ctx, *id)
	if err != nil {
		fail("state-running", err)
	}
	emit(step{"step": "state-running", "container": containerSummary(state)})
	pids, err := r.Ps(ctx, *id)
	if err != nil {
		fail("ps", err)
	}
	emit(step{"step": "ps", "pids": pids})

	if err := r.Kill(ctx, *id, int(unix.SIGTERM), nil); err != nil {
		fail("kill", err)
	}
	var status unix.WaitStatus
	if _, err := unix.Wait4(pid, &status, 0, nil); err != nil {
		fail("wait", err)
	}
	emit(step{"step": "wait", "exited": status.Exited(), "exit_status": status.ExitStatus(),
		"signaled": status.Signaled()})

	state, err = r.State(ctx, *id)
	if err != nil {
		fail("state-stopped", err)
	}
	emit(step{"step": "state-stopped", "container": containerSummary(state)})
	if err := r.Delete(ctx, *id, nil); err != nil {
		fail("delete", err)
	}
	emit(step{"step": "delete"})
	listed, err = r.List(ctx)
	if err != nil {
		fail("list-deleted", err)
	}
	emit(step{"step": "list-deleted", "containers": listSummary(listed)})
	if _, err := r.State(ctx, *id); err != nil {
		emit(step{"step": "state-deleted", "error": err.Error()})
	} else {
		fail("state-deleted", fmt.Errorf("state of a deleted container succeeded"))
	}
}
