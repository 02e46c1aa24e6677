/** A whole-page message (refusals, wrong host, unreachable service), never a blank page. */
import type { ReactNode } from 'react';
import { Center, Paper, Stack, Text, Title } from '@mantine/core';
import { BrandMark } from './BrandMark';

export function FullPage({ title, children, actions, testId }: { title: string; children: ReactNode; actions?: ReactNode; testId?: string }) {
  return (
    <Center mih="100vh" p="md" bg="var(--mantine-color-gray-0)">
      <Paper withBorder shadow="sm" p="xl" radius="lg" maw={480} w="100%" data-testid={testId}>
        <Stack>
          <BrandMark />
          <Title order={2}>{title}</Title>
          <Text component="div">{children}</Text>
          {actions}
        </Stack>
      </Paper>
    </Center>
  );
}
