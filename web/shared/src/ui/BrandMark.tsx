/** The brand's logo and name (or Sentra's on the neutral host). */
import { Group, Image, Text, ThemeIcon } from '@mantine/core';
import { useSentra } from './context';

export function BrandMark({ suffix }: { suffix?: string }) {
  const { brand } = useSentra();
  const name = brand?.displayName ?? 'Sentra';
  return (
    <Group gap="xs" wrap="nowrap" data-testid="brand-mark">
      {brand?.logoUrl ? (
        <Image src={brand.logoUrl} alt={`${name} logo`} h={28} w="auto" fit="contain" />
      ) : (
        <ThemeIcon size={28} radius="md" aria-hidden>
          {name.slice(0, 1).toUpperCase()}
        </ThemeIcon>
      )}
      <Text fw={700} size="lg" truncate>
        {name}
        {suffix && (
          <Text span c="dimmed" fw={400} size="sm" ml={6}>
            {suffix}
          </Text>
        )}
      </Text>
    </Group>
  );
}
