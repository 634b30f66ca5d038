// One place for the harness's last-resort cleanup: synchronous hooks run on process exit, and
// Ctrl-C / SIGTERM exit the process unless the program handles the signal itself (serve-*.ts).
const hooks = new Set<() => void>();
let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  process.on("exit", () => {
    for (const h of [...hooks]) {
      try {
        h();
      } catch {
        // Best effort: one failing hook must not keep the others from running.
      }
    }
  });
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    const onSignal = () => {
      // A program that listens too (serve-cluster.ts) stops gracefully and exits on its own.
      if (process.listeners(sig).some((l) => l !== onSignal)) return;
      process.exit(130);
    };
    process.on(sig, onSignal);
  }
}

/** Registers a synchronous hook run at exit (in registration order); returns its removal. */
export function onExit(hook: () => void): () => void {
  install();
  hooks.add(hook);
  return () => hooks.delete(hook);
}
