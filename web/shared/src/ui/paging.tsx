/**
 * AIP-158 paging in the UI: the server hands out opaque `next_page_token`s; the pager keeps the
 * tokens of the pages visited so "Previous" works without the server knowing about it.
 */
import { useEffect, useState } from 'react';
import { Button, Group, Text } from '@mantine/core';

export interface Paging {
  /** Token of the page being shown ('' for the first). */
  token: string;
  /** 1-based page number. */
  page: number;
  next: (token: string) => void;
  prev: () => void;
}

/** Page tokens, back to the first page whenever `resetKey` changes (filters, brand). */
export function usePaging(resetKey: string): Paging {
  const [state, setState] = useState<{ key: string; stack: string[] }>({ key: resetKey, stack: [''] });
  useEffect(() => {
    if (state.key !== resetKey) setState({ key: resetKey, stack: [''] });
  }, [resetKey, state.key]);
  const stack = state.key === resetKey ? state.stack : [''];
  return {
    token: stack[stack.length - 1] ?? '',
    page: stack.length,
    next: (token) => setState({ key: resetKey, stack: [...stack, token] }),
    prev: () => setState({ key: resetKey, stack: stack.length > 1 ? stack.slice(0, -1) : [''] }),
  };
}

/** Previous/next controls; hidden when everything fits on one page. */
export function Pager({ paging, nextToken }: { paging: Paging; nextToken: string | undefined }) {
  if (paging.page === 1 && !nextToken) return null;
  return (
    <Group justify="flex-end" mt="sm" gap="xs">
      <Text size="sm" c="dimmed">
        Page {paging.page}
      </Text>
      <Button variant="default" size="xs" disabled={paging.page === 1} onClick={paging.prev}>
        Previous
      </Button>
      <Button variant="default" size="xs" disabled={!nextToken} onClick={() => nextToken && paging.next(nextToken)}>
        Next
      </Button>
    </Group>
  );
}
