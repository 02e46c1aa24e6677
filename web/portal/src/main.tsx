import '@mantine/core/styles.css';
import '@mantine/notifications/styles.css';
import '@sentra/shared/ui/print.css';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { RouterProvider } from 'react-router';
import { Boot } from '@sentra/shared/ui';
import { router } from './routes';

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <Boot app="portal">
      <RouterProvider router={router} />
    </Boot>
  </StrictMode>,
);
