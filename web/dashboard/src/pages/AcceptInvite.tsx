/** Where an invitation link lands: the invited person sets a password, then signs in. */
import { useState } from 'react';
import { Anchor, Button, Center, Paper, PasswordInput, Stack, Text, Title } from '@mantine/core';
import { useMutation } from '@connectrpc/connect-query';
import { Link, useSearchParams } from 'react-router';
import { TenancyService } from '@sentra/shared/api';
import { fieldError, toProblem, type Problem } from '@sentra/shared/errors';
import { BrandMark, ErrorAlert } from '@sentra/shared/ui';

export default function AcceptInvite() {
  const [params] = useSearchParams();
  const token = params.get('token') ?? '';
  const [password, setPassword] = useState('');
  const [problem, setProblem] = useState<Problem | null>(null);
  const accept = useMutation(TenancyService.method.acceptInvite);
  return (
    <Center mih="100vh" p="md" bg="var(--mantine-color-gray-0)">
      <Paper withBorder shadow="sm" p="xl" radius="lg" w="100%" maw={420}>
        <Stack>
          <BrandMark />
          <Title order={2}>Join your team</Title>
          {accept.isSuccess ? (
            <>
              <Text>Your account is ready, {accept.data.user?.displayName}.</Text>
              <Button component={Link} to="/sign-in">
                Sign in
              </Button>
            </>
          ) : !token ? (
            <Text>This link is incomplete. Ask for a new invitation.</Text>
          ) : (
            <form
              onSubmit={(e) => {
                e.preventDefault();
                setProblem(null);
                accept.mutateAsync({ inviteToken: token, password }).catch((error: unknown) => setProblem(toProblem(error)));
              }}
            >
              <Stack>
                <PasswordInput
                  label="Choose a password"
                  autoComplete="new-password"
                  required
                  value={password}
                  onChange={(e) => setPassword(e.currentTarget.value)}
                  error={fieldError(problem, 'password')}
                />
                {problem && !fieldError(problem, 'password') && <ErrorAlert error={problem} />}
                <Button type="submit" loading={accept.isPending}>
                  Set password
                </Button>
                <Anchor component={Link} to="/sign-in" size="sm">
                  Already have an account? Sign in
                </Anchor>
              </Stack>
            </form>
          )}
        </Stack>
      </Paper>
    </Center>
  );
}
