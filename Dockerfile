# The mmkg API and views; docker-compose.yml runs it against Neo4j (`mmkg serve --neo4j bolt://neo4j:7687`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . /src
RUN pip install /src && useradd --create-home --uid 1000 mmkg

USER mmkg
WORKDIR /home/mmkg
EXPOSE 8000
# Without --neo4j (or NEO4J_URI) the embedded store lives in the container's user data directory.
CMD ["mmkg", "serve", "--host", "0.0.0.0", "--port", "8000"]
