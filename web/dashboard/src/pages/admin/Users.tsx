/**
 * The organization's staff: create a user with a password, or invite one (the invitation link is
 * shown once, to send to the person).
 */
import { useState } from 'react';
import { Anchor, Badge, Button, Card, CopyButton, Group, Modal, PasswordInput, SegmentedControl, Select, Stack, Table, Text, TextInput } from '@mantine/core';
import { useMutation, useQuery } from '@connectrpc/connect-query';
import { Link } from 'react-router';
import { TenancyService } from '@sentra/shared/api';
import { OrgRole, UserState } from '@sentra/shared/gen/sentra/tenancy/v1/resources_pb';
import { ORG_ROLE_LABEL, USER_STATE_LABEL } from '@sentra/shared/labels';
import { fieldError, toProblem, type Problem } from '@sentra/shared/errors';
import { ErrorAlert, ListTable, PageHeader, Pager, QueryView, When, usePaging } from '@sentra/shared/ui';
import { useInvalidate } from '../../data';

function NewUser({ onClose }: { onClose: () => void }) {
  const invalidate = useInvalidate();
  const [mode, setMode] = useState<'invite' | 'create'>('invite');
  const [f, setF] = useState({ email: '', displayName: '', password: '', role: String(OrgRole.MEMBER) });
  const [problem, setProblem] = useState<Problem | null>(null);
  const [requestId] = useState(() => crypto.randomUUID());
  const [inviteLink, setInviteLink] = useState<string | null>(null);
  const invite = useMutation(TenancyService.method.inviteUser);
  const create = useMutation(TenancyService.method.createUser);
  if (inviteLink) {
    return (
      <Stack>
        <Text size="sm">Send this link to {f.email}. It works once; it is not shown again.</Text>
        <TextInput readOnly value={inviteLink} aria-label="Invitation link" data-testid="invite-link" />
        <Group justify="flex-end">
          <CopyButton value={inviteLink}>{({ copied, copy }) => <Button onClick={copy}>{copied ? 'Copied' : 'Copy link'}</Button>}</CopyButton>
          <Button variant="default" onClick={onClose}>
            Done
          </Button>
        </Group>
      </Stack>
    );
  }
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        setProblem(null);
        const common = { email: f.email.trim(), displayName: f.displayName.trim(), orgRole: Number(f.role) as OrgRole, requestId };
        const call =
          mode === 'invite'
            ? invite.mutateAsync(common).then((r) => setInviteLink(`${window.location.origin}/app/accept-invite?token=${encodeURIComponent(r.inviteToken)}`))
            : create.mutateAsync({ ...common, password: f.password }).then(onClose);
        call.then(() => invalidate(TenancyService)).catch((error: unknown) => setProblem(toProblem(error)));
      }}
    >
      <Stack>
        <SegmentedControl
          value={mode}
          onChange={(v) => setMode(v as 'invite' | 'create')}
          data={[
            { value: 'invite', label: 'Invite by link' },
            { value: 'create', label: 'Set a password' },
          ]}
        />
        <TextInput label="Email" required value={f.email} onChange={(e) => setF({ ...f, email: e.currentTarget.value })} error={fieldError(problem, 'email')} />
        <TextInput label="Name" required value={f.displayName} onChange={(e) => setF({ ...f, displayName: e.currentTarget.value })} error={fieldError(problem, 'display_name')} />
        <Select
          label="Organization role"
          description="Members get their rights from brand roles; analysts may also export the event history, without personal data; admins hold every right."
          data={[OrgRole.MEMBER, OrgRole.ANALYST, OrgRole.ADMIN].map((r) => ({ value: String(r), label: ORG_ROLE_LABEL[r] }))}
          value={f.role}
          onChange={(v) => setF({ ...f, role: v ?? String(OrgRole.MEMBER) })}
          allowDeselect={false}
        />
        {mode === 'create' && (
          <PasswordInput label="Password" required value={f.password} onChange={(e) => setF({ ...f, password: e.currentTarget.value })} error={fieldError(problem, 'password')} />
        )}
        {problem && Object.keys(problem.fields).length === 0 && <ErrorAlert error={problem} />}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button type="submit" loading={invite.isPending || create.isPending}>
            {mode === 'invite' ? 'Invite' : 'Create user'}
          </Button>
        </Group>
      </Stack>
    </form>
  );
}

export default function Users() {
  const paging = usePaging('users');
  const users = useQuery(TenancyService.method.listUsers, { pageSize: 50, pageToken: paging.token });
  const [adding, setAdding] = useState(false);
  return (
    <>
      <PageHeader title="Users" actions={<Button onClick={() => setAdding(true)}>Add user</Button>}>
        Everyone who works in the organization. Give them roles on brands from their page.
      </PageHeader>
      <Card withBorder padding={0}>
        <QueryView query={users} isEmpty={(d) => d.users.length === 0}>
          {(data) => (
            <ListTable minWidth={560} testId="users-table" columns={['Name', 'Email', 'Role', 'State', 'Since']}>
              {data.users.map((u) => (
                <Table.Tr key={u.id}>
                  <Table.Td>
                    <Anchor component={Link} to={`/admin/users/${u.id}`}>
                      {u.displayName}
                    </Anchor>
                  </Table.Td>
                  <Table.Td>{u.email}</Table.Td>
                  <Table.Td>{ORG_ROLE_LABEL[u.orgRole]}</Table.Td>
                  <Table.Td>
                    <Badge color={u.state === UserState.ACTIVE ? 'green' : u.state === UserState.INVITED ? 'yellow' : 'gray'}>
                      {USER_STATE_LABEL[u.state]}
                    </Badge>
                  </Table.Td>
                  <Table.Td>
                    <When value={u.createTime} />
                  </Table.Td>
                </Table.Tr>
              ))}
            </ListTable>
          )}
        </QueryView>
      </Card>
      <Pager paging={paging} nextToken={users.data?.nextPageToken} />
      <Modal opened={adding} onClose={() => setAdding(false)} title="Add a user">
        {adding && <NewUser onClose={() => setAdding(false)} />}
      </Modal>
    </>
  );
}
