/** Routes that need a session: a loader while it resumes, the sign-in page when there is none. */
import type { ReactNode } from 'react';
import { Center, Loader } from '@mantine/core';
import { Navigate, useLocation } from 'react-router';
import { useSessionState } from './context';

export function RequireSession({ children, signIn = '/sign-in' }: { children: ReactNode; signIn?: string }) {
  const state = useSessionState();
  const location = useLocation();
  if (state.status === 'restoring') {
    return (
      <Center mih="100vh" aria-busy="true">
        <Loader />
      </Center>
    );
  }
  if (state.status === 'signed-out') {
    const params = new URLSearchParams({ next: location.pathname + location.search });
    if (state.reason === 'expired') params.set('reason', 'expired');
    return <Navigate to={`${signIn}?${params}`} replace />;
  }
  return <>{children}</>;
}
