-- Who holds which role on which brand (from Tenancy's brand access events): whom an overdue
-- invoice notifies (the brand's finance people).
CREATE TABLE known_brand_roles (
    brand_id uuid NOT NULL,
    user_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    role text NOT NULL,
    PRIMARY KEY (brand_id, user_id)
);

CREATE INDEX known_brand_roles_role ON known_brand_roles (brand_id, role);

-- The lead's address, so mail from it arriving in a connected mailbox notifies the assignee.
ALTER TABLE lead_assignees ADD COLUMN contact_email text NOT NULL DEFAULT '';

CREATE INDEX lead_assignees_email ON lead_assignees (organization_id, lower(contact_email));
