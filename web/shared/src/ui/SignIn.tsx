/**
 * Sign-in for both apps, dressed in the host's brand. The host name goes with the credentials:
 * it names the brand whose portal a client signs in to.
 */
import { useState, type ReactNode } from 'react';
import { Alert, Button, Center, Paper, PasswordInput, Stack, Text, TextInput, Title } from '@mantine/core';
import { Navigate, useNavigate, useSearchParams } from 'react-router';
import { Code } from '@connectrpc/connect';
import { toProblem, type Problem } from '../errors';
import { BrandMark } from './BrandMark';
import { useSentra, useSessionState } from './context';

export function SignInPage({ heading, note, home = '/' }: { heading: string; note?: ReactNode; home?: string }) {
  const { session, brand } = useSentra();
  const state = useSessionState();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState(false);
  const next = params.get('next') || home;
  const expired = params.get('reason') === 'expired';

  if (state.status === 'signed-in') return <Navigate to={next} replace />;

  return (
    <Center mih="100vh" p="md" bg="var(--mantine-color-gray-0)">
      <Paper withBorder shadow="sm" p="xl" radius="lg" w="100%" maw={420}>
        <form
          aria-label="Sign in"
          onSubmit={(e) => {
            e.preventDefault();
            setBusy(true);
            setProblem(null);
            session
              // A brand's domain names the brand (and its organization); the neutral host names none.
              .signIn(email.trim(), password, brand?.domain ?? '')
              .then(() => navigate(next, { replace: true }))
              .catch((error: unknown) => setProblem(toProblem(error)))
              .finally(() => setBusy(false));
          }}
        >
          <Stack>
            <BrandMark />
            <Title order={2}>{heading}</Title>
            {expired && !problem && (
              <Alert color="yellow" role="status" data-testid="session-expired">
                Your session has expired. Please sign in again.
              </Alert>
            )}
            <TextInput
              label="Email"
              type="email"
              autoComplete="username"
              required
              value={email}
              onChange={(e) => setEmail(e.currentTarget.value)}
            />
            <PasswordInput
              label="Password"
              autoComplete="current-password"
              required
              value={password}
              onChange={(e) => setPassword(e.currentTarget.value)}
            />
            {problem && (
              <Alert color="red" role="alert" data-testid="sign-in-error">
                {problem.code === Code.Unauthenticated
                  ? brand
                    ? `That email and password do not match an account of ${brand.displayName}. If your account is with another agency or portal, sign in at its own address.`
                    : 'That email and password do not match an account.'
                  : problem.message}
              </Alert>
            )}
            <Button type="submit" loading={busy} fullWidth>
              Sign in
            </Button>
            {note && (
              <Text size="sm" c="dimmed">
                {note}
              </Text>
            )}
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}
