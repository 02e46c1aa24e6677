/**
 * The "as of" control: empty means now; a past date and time shows the figures exactly as they
 * stood then (the services answer from the recorded events).
 */
import { Alert, Button, Group, TextInput } from '@mantine/core';
import { formatTimestamp, instantFromInput } from '@sentra/shared/format';

export function AsOfInput({ value, onChange }: { value: string; onChange: (value: string) => void }) {
  return (
    <Group gap="xs" align="flex-end" wrap="nowrap">
      <TextInput
        type="datetime-local"
        step={1}
        label="As of"
        description="Empty: now"
        value={value}
        onChange={(e) => onChange(e.currentTarget.value)}
        max="9999-12-31T23:59:59"
        data-testid="as-of"
      />
      {value && (
        <Button variant="default" onClick={() => onChange('')}>
          Now
        </Button>
      )}
    </Group>
  );
}

export function AsOfBanner({ value }: { value: string }) {
  const ts = instantFromInput(value);
  if (!ts) return null;
  return (
    <Alert color="yellow" mb="md" data-testid="as-of-banner">
      Showing the figures as they stood on {formatTimestamp(ts)}. Changes made since are not included.
    </Alert>
  );
}
