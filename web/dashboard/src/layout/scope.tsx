/**
 * Which brand the dashboard works on. On a brand's domain it is that brand, fixed (the white-label
 * workspace); on the neutral host a person with several brands picks one, or all of them.
 */
import { createContext, useContext, useState, type ReactNode } from 'react';
import { useSentra } from '@sentra/shared/ui';

export interface Scope {
  /** The brand to show, or `null` for every brand the person can see. */
  brandId: string | null;
  /** Whether the host fixes the brand (no picker). */
  fixed: boolean;
  setBrandId: (id: string | null) => void;
}

const ScopeContext = createContext<Scope | null>(null);
const KEY = 'sentra.dashboard.brand';

export function ScopeProvider({ children }: { children: ReactNode }) {
  const { brand } = useSentra();
  const [picked, setPicked] = useState<string | null>(() => window.localStorage.getItem(KEY));
  const scope: Scope = brand
    ? { brandId: brand.brandId, fixed: true, setBrandId: () => undefined }
    : {
        brandId: picked,
        fixed: false,
        setBrandId: (id) => {
          if (id === null) window.localStorage.removeItem(KEY);
          else window.localStorage.setItem(KEY, id);
          setPicked(id);
        },
      };
  return <ScopeContext.Provider value={scope}>{children}</ScopeContext.Provider>;
}

export function useScope(): Scope {
  const scope = useContext(ScopeContext);
  if (!scope) throw new Error('useScope outside ScopeProvider');
  return scope;
}
