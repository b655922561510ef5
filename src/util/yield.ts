/**
 * Lets the event loop run (timers, progress bars, a page's input) between
 * training steps. setImmediate where the platform has it (Node); elsewhere a
 * MessageChannel message, which unlike setTimeout(0) is not clamped to 4 ms.
 */
export function yieldToEventLoop(): Promise<void> {
  const g = globalThis as { setImmediate?: (f: () => void) => unknown };
  if (typeof g.setImmediate === 'function') return new Promise((r) => g.setImmediate!(r));
  return new Promise((r) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      r();
    };
    channel.port2.postMessage(null);
  });
}
