/**
 * Group commit: callers hand over entries one at a time and each waits for its own. While a batch
 * is on its way, new entries wait and then go out together (at most `max` a batch); with nothing
 * on its way an entry goes out at once. So no entry waits for a timer, and under load one request
 * carries many entries. `send` answers, for each entry of its batch, the error that refused it or
 * undefined; a thrown error refuses the whole batch.
 */
export function groupCommit<T>(
  send: (entries: T[]) => Promise<(Error | undefined)[]>,
  max: number,
): (entry: T) => Promise<void> {
  const waiting: { entry: T; resolve: () => void; reject: (error: unknown) => void }[] = [];
  let sending = false;

  async function drain(): Promise<void> {
    sending = true;
    while (waiting.length > 0) {
      const batch = waiting.splice(0, max);
      try {
        const errors = await send(batch.map((w) => w.entry));
        batch.forEach((w, i) => {
          const error = errors[i];
          if (error) w.reject(error);
          else w.resolve();
        });
      } catch (error) {
        for (const w of batch) w.reject(error);
      }
    }
    sending = false;
  }

  return (entry) =>
    new Promise<void>((resolve, reject) => {
      waiting.push({ entry, resolve, reject });
      // a microtask later: entries handed over in the same turn share the first batch
      if (!sending) {
        sending = true;
        queueMicrotask(() => void drain());
      }
    });
}
