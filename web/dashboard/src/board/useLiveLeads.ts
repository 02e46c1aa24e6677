/**
 * Keeps the board live: a `WatchPipeline` stream (gRPC-Web through Envoy) that hands every change
 * to a lead the person may read to `onLead` as it happens. The stream's first message says the
 * watch is on; `onWatching` then refetches the columns, so nothing that happened before the
 * watch began is missed. A broken stream is reopened after a pause (and the columns refetched
 * again), and closed when the board goes away or its brand changes.
 */
import { useEffect, useRef, useState } from 'react';
import type { Lead } from '@sentra/shared/gen/sentra/sales/v1/resources_pb';
import { useSentra } from '@sentra/shared/ui';

/** Pause before reopening a broken stream. */
const RECONNECT_MS = 2_000;

export function useLiveLeads(brandId: string, onLead: (lead: Lead) => void, onWatching: () => void): boolean {
  const { clients } = useSentra();
  const [live, setLive] = useState(false);
  // The latest callbacks, without reopening the stream each render.
  const handlers = useRef({ onLead, onWatching });
  handlers.current = { onLead, onWatching };

  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    async function watch() {
      try {
        for await (const message of clients.sales.watchPipeline({ brandId }, { signal: abort.signal })) {
          if (message.keepalive) continue;
          if (message.lead) {
            handlers.current.onLead(message.lead);
          } else {
            setLive(true);
            handlers.current.onWatching();
          }
        }
      } catch {
        // Aborted on purpose, or the connection broke: either way the stream is over.
      }
      setLive(false);
      if (!abort.signal.aborted) timer = setTimeout(() => void watch(), RECONNECT_MS);
    }
    void watch();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [clients, brandId]);

  return live;
}
