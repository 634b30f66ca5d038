// Renders the gVisor shim's configuration (runsc.toml): which runsc binary to run and the
// runsc flags every gVisor sandbox gets. Pure; the agent writes the file.
import { tomlString, type Layout } from "./layout.js";

export function renderRunscConfig(layout: Layout): string {
  const flags = Object.entries(layout.runscFlags).sort(([a], [b]) => a.localeCompare(b));
  return [
    `# gVisor shim configuration. Written by sandbox-operator; removed on uninstall. Do not edit.`,
    `binary_name = ${tomlString(layout.runsc)}`,
    ``,
    `[runsc_config]`,
    ...flags.map(([k, v]) => `${k} = ${tomlString(v)}`),
    ``,
  ].join("\n");
}
