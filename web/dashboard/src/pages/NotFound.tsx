/** A path the dashboard does not know. */
import { Button, Stack, Text, Title } from '@mantine/core';
import { Link } from 'react-router';

export default function NotFound() {
  return (
    <Stack align="flex-start" py="xl">
      <Title order={2}>Page not found</Title>
      <Text c="dimmed">There is nothing at this address. It may have moved, or the link may be wrong.</Text>
      <Button component={Link} to="/">
        Go to the start page
      </Button>
    </Stack>
  );
}
