// kata-check: loads one Kata configuration file with Kata's own loader (katautils.LoadConfiguration)
// and prints what Kata resolved as JSON; with -annotations, sends pod annotations through oci.SandboxConfig.
//
// A test checker, not shipped: test/harness/binaries.ts copies this file into the Kata 4.1.0
// runtime tree extracted from ../shared/fixtures/kata/ and builds it there, offline, cached. It
// starts nothing, loads no module, opens no syslog and no network: it only reads files. Tests run it
// in a chroot of stand-in files (test/harness/kata-check.ts says which).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/kata-containers/kata-containers/src/runtime/pkg/katautils"
	"github.com/kata-containers/kata-containers/src/runtime/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
)

type annotation struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type annotationResult struct {
	Key      string `json:"key"`
	Value    string `json:"value"`
	Accepted bool   `json:"accepted"`
	Error    string `json:"error,omitempty"`
	// KernelParams is the guest kernel command line Kata would use after this annotation (accepted ones only).
	KernelParams string `json:"kernelParams,omitempty"`
}

type report struct {
	ResolvedPath string `json:"resolvedPath"`
	// UnknownKeys are keys of the file that no field of Kata's configuration reads (Kata ignores them silently).
	UnknownKeys []string `json:"unknownKeys"`
	// HostCPUs is the vCPU ceiling Kata computed on this host (default_vcpus above it is clamped to it).
	HostCPUs    uint32             `json:"hostCPUs"`
	Config      oci.RuntimeConfig  `json:"config"`
	Annotations []annotationResult `json:"annotations,omitempty"`
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kata-check: "+format+"\n", args...)
	os.Exit(1)
}

// sandboxSpec is the smallest OCI spec the shim's create path accepts for a pod sandbox.
func sandboxSpec(a annotation) specs.Spec {
	return specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: []string{"/pause"}, Cwd: "/"},
		Linux:   &specs.Linux{Resources: &specs.LinuxResources{}},
		Annotations: map[string]string{
			"io.kubernetes.cri.container-type": "sandbox",
			"io.kubernetes.cri.sandbox-id":     "kata-check",
			a.Key:                              a.Value,
		},
	}
}

func evaluate(configPath string, a annotation) annotationResult {
	// Load afresh for each annotation: overrides write through slices shared with the loaded config.
	_, cfg, err := katautils.LoadConfiguration(configPath, true)
	if err != nil {
		fail("%s: %v", configPath, err)
	}
	res := annotationResult{Key: a.Key, Value: a.Value}
	sc, err := oci.SandboxConfig(sandboxSpec(a), cfg, os.TempDir(), "kata-check", false, false)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Accepted = true
	res.KernelParams = katautils.SandboxOperatorKernelParams(sc.HypervisorConfig)
	return res
}

func main() {
	configPath := flag.String("config", "", "Kata configuration file to load")
	annotationsPath := flag.String("annotations", "", "JSON file [{key, value}, ...] of pod annotations to evaluate one at a time ('-' for stdin)")
	flag.Parse()
	if *configPath == "" {
		fail("usage: kata-check -config FILE [-annotations FILE]")
	}
	logrus.SetOutput(os.Stderr)
	logrus.SetLevel(logrus.WarnLevel)

	abs, err := filepath.Abs(*configPath)
	if err != nil {
		fail("%v", err)
	}
	resolved, cfg, err := katautils.LoadConfiguration(abs, true)
	if err != nil {
		fail("%s: %v", abs, err)
	}
	unknown, err := katautils.SandboxOperatorUndecodedKeys(resolved)
	if err != nil {
		fail("%s: %v", resolved, err)
	}
	sort.Strings(unknown)
	out := report{ResolvedPath: resolved, UnknownKeys: unknown, HostCPUs: katautils.SandboxOperatorHostCPUs(), Config: cfg}

	if *annotationsPath != "" {
		var raw []byte
		if *annotationsPath == "-" {
			raw, err = io.ReadAll(os.Stdin)
		} else {
			raw, err = os.ReadFile(*annotationsPath)
		}
		if err != nil {
			fail("%v", err)
		}
		var list []annotation
		if err := json.Unmarshal(raw, &list); err != nil {
			fail("%s: %v", *annotationsPath, err)
		}
		for _, a := range list {
			out.Annotations = append(out.Annotations, evaluate(resolved, a))
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		fail("encoding the resolved configuration: %v", err)
	}
}
